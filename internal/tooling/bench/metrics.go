package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
)

// AWS S3 Standard list prices (us-east-1) used for the request cost per GiB
// ingested. Storage ($0.023 per GB-month) and transfer are not included:
// they grow with bytes whatever the system.
const (
	PutPricePer1000 = 0.005  // PUT, COPY, POST, LIST per 1,000 requests
	GetPricePer1000 = 0.0004 // GET, SELECT per 1,000 requests
)

// nodeSample is what one scrape of a node's /metrics tells the benchmark.
type nodeSample struct {
	at         time.Time
	puts, gets float64 // object store requests (chunk PUTs, ranged GETs)
	getBytes   float64 // object bytes those GETs read
	overloaded float64 // produce requests answered 429
	cpuSeconds float64 // process_cpu_seconds_total
	rssBytes   float64 // process_resident_memory_bytes
	// checkpointSeconds and checkpointBytes are the last checkpoint this
	// node wrote (package recovery); 0 before its first.
	checkpointSeconds, checkpointBytes float64
}

// scrapeNode reads the node's Prometheus metrics.
func scrapeNode(ctx context.Context, hc *http.Client, metricsURL, token string) (nodeSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nodeSample{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nodeSample{}, fmt.Errorf("scrape %s: %w", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeSample{}, fmt.Errorf("scrape %s: %s", metricsURL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nodeSample{}, fmt.Errorf("scrape %s: %w", metricsURL, err)
	}
	s := nodeSample{at: time.Now()}
	s.puts = sumMetric(families["mamba_objectstore_requests_total"], "op", "put")
	// Fetches read chunks with ranged GETs (op get_range); whole-object
	// GETs (op get) are counted too, as before.
	s.gets = sumMetric(families["mamba_objectstore_requests_total"], "op", "get") +
		sumMetric(families["mamba_objectstore_requests_total"], "op", "get_range")
	s.getBytes = sumMetric(families["mamba_objectstore_read_bytes_total"], "op", "get") +
		sumMetric(families["mamba_objectstore_read_bytes_total"], "op", "get_range")
	s.overloaded = sumMetric(families["mamba_produce_requests_total"], "outcome", "overloaded")
	s.cpuSeconds = sumMetric(families["process_cpu_seconds_total"], "", "")
	s.rssBytes = sumMetric(families["process_resident_memory_bytes"], "", "")
	s.checkpointSeconds = sumMetric(families["mamba_checkpoint_last_duration_seconds"], "", "")
	s.checkpointBytes = sumMetric(families["mamba_checkpoint_last_bytes"], "", "")
	return s, nil
}

// sumMetric adds the values of a family's series whose label name has the
// given value (every series when name is empty).
func sumMetric(f *dto.MetricFamily, name, value string) float64 {
	if f == nil {
		return 0
	}
	var sum float64
	for _, m := range f.GetMetric() {
		if name != "" && !hasLabel(m, name, value) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

// redisCommands returns the server's total_commands_processed.
func redisCommands(ctx context.Context, rc *redis.Client) (int64, error) {
	info, err := rc.Info(ctx, "stats").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis INFO stats has no total_commands_processed")
}

// peakRSS returns a local process's peak resident set size (VmHWM), or 0
// when it cannot be read (not Linux, or the process is gone).
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// resetPeakRSS resets a local process's VmHWM to its current RSS (Linux
// clear_refs "5"), so that peakRSS reports the peak from now on.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// requestCostPerGiB is the S3 request cost of ingesting one GiB at the
// list prices above.
func requestCostPerGiB(puts, gets float64, bytes int64) float64 {
	if bytes <= 0 {
		return 0
	}
	gib := float64(bytes) / (1 << 30)
	return (puts*PutPricePer1000 + gets*GetPricePer1000) / 1000 / gib
}
