package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

func TestMedian(t *testing.T) {
	id := func(v float64) float64 { return v }
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in, id); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestCompareRowsRatios(t *testing.T) {
	res := func(sys string, mibs ...float64) []SystemResult {
		var out []SystemResult
		for _, m := range mibs {
			out = append(out, SystemResult{System: sys, Produce: Throughput{MiBPerSec: m}, Ack: Latency{P99: m}})
		}
		return out
	}
	rows := compareRows([]string{SysMinIOPut, SysMamba, SysNATSSync, SysRedisAlways}, map[string][]SystemResult{
		SysMinIOPut:    res(SysMinIOPut, 300, 100, 200),
		SysMamba:       res(SysMamba, 150, 140, 160),
		SysNATSSync:    res(SysNATSSync, 50, 50, 50),
		SysRedisAlways: nil, // not measured: no row
	})
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if r := rows[0]; r.MiBPerSec != 200 || r.OfPUTLimit != 0 || !near(r.MambaOver, 0.75) || r.AckP99 != 200 {
		t.Errorf("minio-put row %+v", r)
	}
	if r := rows[1]; r.MiBPerSec != 150 || !near(r.OfPUTLimit, 0.75) || r.MambaOver != 0 {
		t.Errorf("mamba row %+v", r)
	}
	if r := rows[2]; !near(r.OfPUTLimit, 0.25) || !near(r.MambaOver, 3) {
		t.Errorf("nats row %+v", r)
	}
}

func TestRecorderPercentiles(t *testing.T) {
	r := NewRecorder()
	for i := 1; i <= 1000; i++ {
		r.Record(time.Duration(i) * time.Millisecond)
	}
	r.RecordN(time.Hour, 1) // clamped to the histogram's range, still counted
	s := r.Summary()
	if s.Count != 1001 {
		t.Fatalf("count %d, want 1001", s.Count)
	}
	within := func(got, want float64) bool { return math.Abs(got-want) <= want*0.005 }
	if !within(s.P50, 500) || !within(s.P90, 900) || !within(s.P99, 990) {
		t.Errorf("percentiles %+v, want p50 500, p90 900, p99 990 (±0.5%%: three significant digits, and p50 of 1001 samples is the 501st)", s)
	}
	if !within(s.Max, float64(10*time.Minute/time.Millisecond)) {
		t.Errorf("max %v, want the clamp at 10 minutes", s.Max)
	}
	r.Reset()
	if s := r.Summary(); s.Count != 0 || s.P99 != 0 {
		t.Errorf("after Reset: %+v", s)
	}
}

func TestRequestCost(t *testing.T) {
	// 128 PUTs of 8 MiB = 1 GiB: 128 x $0.005/1000.
	if got, want := requestCostPerGiB(128, 0, 1<<30), 128*0.005/1000; math.Abs(got-want) > 1e-12 {
		t.Errorf("cost %v, want %v", got, want)
	}
	if got := requestCostPerGiB(10, 10, 0); got != 0 {
		t.Errorf("cost with no bytes = %v, want 0", got)
	}
}

func TestSumMetric(t *testing.T) {
	counter := func(op string, v float64) *dto.Metric {
		return &dto.Metric{Label: []*dto.LabelPair{{Name: proto.String("op"), Value: proto.String(op)}}, Counter: &dto.Counter{Value: proto.Float64(v)}}
	}
	f := &dto.MetricFamily{Metric: []*dto.Metric{counter("put", 3), counter("put", 4), counter("get", 10)}}
	if got := sumMetric(f, "op", "put"); got != 7 {
		t.Errorf("puts %v, want 7", got)
	}
	if got := sumMetric(f, "", ""); got != 17 {
		t.Errorf("all %v, want 17", got)
	}
	if got := sumMetric(nil, "op", "put"); got != 0 {
		t.Errorf("missing family %v, want 0", got)
	}
}

func TestWriteReports(t *testing.T) {
	var b bytes.Buffer
	res := CompareResult{
		Machine: Machine{CPU: "cpu", Cores: 2, Go: "go"},
		Rows:    compareRows([]string{SysMinIOPut, SysMamba}, map[string][]SystemResult{SysMinIOPut: {{Produce: Throughput{MiBPerSec: 200}, Durability: "d"}}, SysMamba: {{Produce: Throughput{MiBPerSec: 150}, Durability: "d"}}}),
		Targets: []Target{{Name: "t", Want: "w", Got: "g", Met: true}},
	}
	if err := WriteCompareReport(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"minio-put", "mamba", "75%", "0.75", "yes"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("compare report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := WriteMambaReport(&b, MambaResult{Settings: MambaSettings{Groups: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"produce", "ack latency", "end-to-end latency", "S3 request cost", "no samples"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("mamba report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestAggregateTargetRuns(t *testing.T) {
	mk := func(mibs, p99, rss, over float64) MambaResult {
		var r MambaResult
		r.Produce.MiBPerSec, r.Ack.P99, r.Node.PeakRSSBytes, r.Node.Overloaded = mibs, p99, int64(rss), over
		return r
	}
	got := aggregate([]MambaResult{mk(100, 500, 600, 10), mk(120, 900, 700, 0), mk(110, 400, 650, 5)})
	if got.Produce.MiBPerSec != 110 || got.Ack.P99 != 500 {
		t.Errorf("medians: %v MiB/s, p99 %v; want 110 and 500", got.Produce.MiBPerSec, got.Ack.P99)
	}
	if got.Node.PeakRSSBytes != 700 || got.Node.Overloaded != 0 {
		t.Errorf("peak RSS %d, 429s %v; want the highest (700) and the fewest (0)", got.Node.PeakRSSBytes, got.Node.Overloaded)
	}
}

func TestJSONTargetComputedFromRuns(t *testing.T) {
	good := SystemResult{System: SysMambaJSON, Produce: Throughput{Records: 1000, Bytes: 1 << 20, MiBPerSec: 12.5}}
	binary := CompareRow{System: SysMamba, MiBPerSec: 25}
	for _, tc := range []struct {
		name string
		runs []SystemResult
		met  bool
	}{
		{"measured", []SystemResult{good, good}, true},
		{"no runs", nil, false},
		{"a run acknowledged nothing", []SystemResult{good, {System: SysMambaJSON}}, false},
		{"a run had errors", []SystemResult{good, {System: SysMambaJSON, Produce: good.Produce, Errors: 3}}, false},
	} {
		row := CompareRow{System: SysMambaJSON, MiBPerSec: 12.5, Runs: tc.runs}
		if got := jsonTarget(row, binary); got.Met != tc.met {
			t.Errorf("%s: met %v, want %v (%+v)", tc.name, got.Met, tc.met, got)
		}
	}
	if got := jsonTarget(CompareRow{Runs: []SystemResult{good}, MiBPerSec: 12.5}, binary).Got; !strings.Contains(got, "x0.50 of binary") {
		t.Errorf("Got %q does not give the ratio to the binary path", got)
	}
}
