package bench

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// startNode runs one node on a fresh MinIO and Redis with small, quick
// flushes (and the extra mamba serve flags), and returns a workload
// pointed at it.
func startNode(t *testing.T, args ...string) MambaConfig {
	t.Helper()
	m := testserver.StartMinIO(t)
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	bucket := m.CreateBucket(t, "bench")
	n := testserver.StartMamba(t, m, r, bucket, "bench-test", append([]string{"--flush-interval", "20ms", "--flush-bytes", "256KiB"}, args...)...)
	return MambaConfig{
		URL: n.URL, NodePid: n.Pid(), RedisAddr: r.Addr,
		FlushInterval: 20 * time.Millisecond, FlushBytes: 256 << 10,
		MessageSize: 256, Partitions: 3, Producers: 2,
		Duration: time.Second, Warmup: 200 * time.Millisecond, Drain: 20 * time.Second,
	}
}

func TestRunMamba(t *testing.T) {
	base := startNode(t)
	for _, tc := range []struct {
		name   string
		mutate func(*MambaConfig)
	}{
		{"binary durable, two groups", func(c *MambaConfig) { c.Groups, c.Consumers = 2, 2 }},
		{"json", func(c *MambaConfig) { c.JSON, c.Groups = true, 1 }},
		{"ack buffered, two topics", func(c *MambaConfig) { c.AckBuffered, c.Topics, c.Groups = true, 2, 1 }},
		{"keyed, one group", func(c *MambaConfig) { c.Keys, c.Groups = 50, 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			var progress []Progress
			cfg.Progress = func(p Progress) { progress = append(progress, p) }
			res, err := RunMamba(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p := res.Produce
			if p.Records == 0 || p.Bytes != p.Records*int64(cfg.MessageSize) || res.Errors != 0 {
				t.Fatalf("produce %+v with %d errors; want records of %d bytes and no errors", p, res.Errors, cfg.MessageSize)
			}
			if res.Ack.Count != p.Records {
				t.Errorf("%d ack latency samples for %d records", res.Ack.Count, p.Records)
			}
			// RunMamba returns only once every group has read every
			// acknowledged record (or fails), so consumers saw the window.
			if res.Consume.Records == 0 || res.EndToEnd.Count != res.Consume.Records {
				t.Errorf("consumed %d records in the window with %d end-to-end samples", res.Consume.Records, res.EndToEnd.Count)
			}
			if res.Node.PUTs < 1 || res.Node.PeakRSSBytes == 0 || res.Node.RedisCommandsPerSec == 0 {
				t.Errorf("node stats %+v", res.Node)
			}
			if len(progress) == 0 {
				t.Error("no progress reported")
			}
			if cfg.JSON != (res.System == "mamba-json") || cfg.AckBuffered != (res.Settings.Ack == "buffered") {
				t.Errorf("system %q settings %+v for JSON %v, buffered %v", res.System, res.Settings, cfg.JSON, cfg.AckBuffered)
			}
		})
	}
}

// The catch-up phase reads back everything produced, and its GETs are
// those of a node whose batch cache cannot hold the history.
func TestRunMambaCatchUp(t *testing.T) {
	cfg := startNode(t, "--cache-bytes", "64KiB")
	cfg.CatchUpReaders, cfg.CatchUpFetchBytes = 2, 64<<10
	res, err := RunMamba(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := res.CatchUp
	if c == nil {
		t.Fatal("no catch-up result")
	}
	// Every record acknowledged in the run, warm-up included, is read back.
	if c.Records < res.Produce.Records || c.Bytes != c.Records*int64(cfg.MessageSize) || c.Fetches < 1 {
		t.Fatalf("catch-up %+v after %d records acknowledged in the window", c, res.Produce.Records)
	}
	if c.GETs < 1 || c.GETBytes < float64(c.Bytes)/2 || c.GETsPerMiB <= 0 || c.Readers != 2 {
		t.Errorf("catch-up read %d bytes with %.0f GETs of %.0f bytes (%.2f per MiB): want at least one GET and most bytes read from the bucket",
			c.Bytes, c.GETs, c.GETBytes, c.GETsPerMiB)
	}
	var out strings.Builder
	if err := WriteMambaReport(&out, res); err != nil || !strings.Contains(out.String(), "per MiB read") {
		t.Errorf("report %q, %v: want the catch-up line", out.String(), err)
	}
}

// A paced run sends on schedule: what is acknowledged in the window is
// close to rate x duration.
func TestRunMambaRate(t *testing.T) {
	cfg := startNode(t)
	cfg.Rate, cfg.Duration = 2000, 2*time.Second
	res, err := RunMamba(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg.Rate * cfg.Duration.Seconds()
	if got := float64(res.Produce.Records); math.Abs(got-want) > 0.3*want {
		t.Errorf("paced run acknowledged %.0f records in the window, want %.0f ± 30%%", got, want)
	}
}

func TestRunMambaCancel(t *testing.T) {
	cfg := startNode(t)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := RunMamba(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run returned %v, want the context's error", err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("cancelled run took %v to return", took)
	}
}

func TestRunMambaRejectsBadConfig(t *testing.T) {
	for _, cfg := range []MambaConfig{
		{},
		{URL: "http://127.0.0.1:1", MessageSize: 4},
		{URL: "http://127.0.0.1:1", Rate: -1},
		{URL: "http://127.0.0.1:1", Groups: -1},
		{URL: "http://127.0.0.1:1", CatchUpReaders: -1},
	} {
		if _, err := RunMamba(t.Context(), cfg); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("RunMamba(%+v) = %v, want a bench: error", cfg, err)
		}
	}
}

func TestRunMambaUnreachableNode(t *testing.T) {
	_, err := RunMamba(t.Context(), MambaConfig{URL: "http://127.0.0.1:1", Duration: time.Second})
	var apiErr *client.APIError
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("run against a closed port = %v, want a connection error", err)
	}
}
