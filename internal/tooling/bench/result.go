// Package bench measures Mamba and the systems users would pick instead
// (raw object store PUTs, NATS JetStream, Redis Streams) with the same
// message size, producer count and durability, on the same machine in the
// same run. cmd/mamba-bench (`mamba bench`, `mamba bench compare`) is its
// front end; docs/benchmarks.md holds the figures and the commands that
// reproduce them.
//
// Latencies are recorded in HDR histograms (github.com/HdrHistogram/
// hdrhistogram-go) with microsecond resolution and three significant
// digits, so percentiles up to p99.9 are exact to 0.1%.
package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 µs to 10 minutes, three significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

// Recorder is a latency histogram safe for concurrent use.
type Recorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{h: hdrhistogram.New(histMin, histMax, histDigits)}
}

// Record adds one latency. Values outside the histogram's range are clamped
// to it so that an outlier is counted rather than dropped.
func (r *Recorder) Record(d time.Duration) {
	r.RecordN(d, 1)
}

// RecordN adds n samples of the same latency (a batch whose records were
// all acknowledged at once).
func (r *Recorder) RecordN(d time.Duration, n int64) {
	v := min(max(d.Microseconds(), histMin), histMax)
	r.mu.Lock()
	_ = r.h.RecordValues(v, n) // cannot fail: v is within range
	r.mu.Unlock()
}

// Reset forgets every sample (used to drop a warm-up period).
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.h.Reset()
	r.mu.Unlock()
}

// Summary returns the recorder's percentiles.
func (r *Recorder) Summary() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	return summarize(r.h)
}

// Latency summarises a latency distribution. Durations are in milliseconds
// in JSON so that reports are easy to read and plot.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
		Mean:  h.Mean() / 1000,
	}
}

// Throughput is what a run moved per second of its measured window.
type Throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Seconds       float64 `json:"seconds"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
}

// NewThroughput computes rates over elapsed.
func NewThroughput(records, bytes int64, elapsed time.Duration) Throughput {
	s := elapsed.Seconds()
	t := Throughput{Records: records, Bytes: bytes, Seconds: s}
	if s > 0 {
		t.RecordsPerSec = float64(records) / s
		t.MiBPerSec = float64(bytes) / s / (1 << 20)
	}
	return t
}

// SystemResult is one system's measurement in a comparison: what it
// sustained, how long each acknowledgement took, and what it cost.
type SystemResult struct {
	// System names the measured set-up, e.g. "minio-put", "mamba",
	// "nats-jetstream", "redis-streams-always".
	System string `json:"system"`
	// Durability says in words what an acknowledgement means for this
	// system, e.g. "object PUT answered by MinIO" or "AOF fsync per write".
	Durability string     `json:"durability"`
	Produce    Throughput `json:"produce"`
	// Ack is the time from handing a record (or, for raw PUTs, an object)
	// to the client library until its acknowledgement.
	Ack Latency `json:"ack_latency"`
	// Errors counts failed sends; a run with errors is still reported.
	Errors int64 `json:"errors"`
	// Notes carries anything a reader needs to interpret the row.
	Notes string `json:"notes,omitempty"`
}
