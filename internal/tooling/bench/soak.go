// The soak run (issue 13, "Measured"): a steady produce rate for a long
// time against a local MinIO, Redis and node, with every figure that must
// stay bounded sampled at a fixed interval, and a verdict on whether each
// stayed within SoakBound of its value once the first retention window
// was over.

package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/mambamq/mamba/bucket"
)

// SoakBound is the most a bounded figure may grow between the reference
// sample and the last one.
const SoakBound = 1.25

// SoakReferenceAt is when the reference sample is taken in a run of at
// least three times its length; shorter runs take it at a third of the
// run.
const SoakReferenceAt = 10 * time.Minute

// SoakConfig is a soak run.
type SoakConfig struct {
	// Duration is how long records are produced; SampleInterval how
	// often the figures are sampled (the last sample is taken at
	// Duration).
	Duration, SampleInterval time.Duration
	// Rate is the records per second of all producers together.
	Rate float64
	// RecordBytes is the size of every record value.
	RecordBytes int
	Partitions  int
	Producers   int
	// Retention is the topic's retention_ms.
	Retention time.Duration
}

// Validate reports every bad field at once.
func (c SoakConfig) Validate() error {
	var errs []error
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: want above zero", c.Duration))
	}
	if c.SampleInterval <= 0 || c.SampleInterval > c.Duration {
		errs = append(errs, fmt.Errorf("sample interval %v: want above zero and at most the duration", c.SampleInterval))
	}
	if c.Rate <= 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate) {
		errs = append(errs, fmt.Errorf("rate %v: want a steady rate above zero", c.Rate))
	}
	if c.RecordBytes < stampBytes {
		errs = append(errs, fmt.Errorf("record bytes %d: want at least %d (the send time every record carries)", c.RecordBytes, stampBytes))
	}
	if c.Partitions < 1 || c.Producers < 1 {
		errs = append(errs, fmt.Errorf("partitions %d, producers %d: want at least 1 each", c.Partitions, c.Producers))
	}
	if c.Retention < time.Millisecond {
		errs = append(errs, fmt.Errorf("retention %v: want at least 1ms", c.Retention))
	}
	return errors.Join(errs...)
}

// ReferenceAt is when the run's reference sample is due.
func (c SoakConfig) ReferenceAt() time.Duration { return min(SoakReferenceAt, c.Duration/3) }

// SoakSample is the figures of one moment of a soak run.
type SoakSample struct {
	// Elapsed is when the sample was due, from the start of producing;
	// Minute the same in minutes.
	Elapsed time.Duration `json:"elapsed_ns"`
	Minute  float64       `json:"minute"`
	// Acked is the records acknowledged so far (as of the workload's
	// last progress report, at most a second old).
	Acked int64 `json:"acked"`
	// RedisUsedMemory is used_memory of Redis's INFO memory.
	RedisUsedMemory int64 `json:"redis_used_memory"`
	// IndexEntries is the chunk index entries of every partition.
	IndexEntries int64 `json:"index_entries"`
	// BucketObjects and BucketBytes count every object in the bucket;
	// BucketPrefixes splits them by prefix.
	BucketObjects  int64                         `json:"bucket_objects"`
	BucketBytes    int64                         `json:"bucket_bytes"`
	BucketPrefixes map[string]bucket.PrefixUsage `json:"bucket_prefixes,omitempty"`
	// CheckpointBytes is the size of the newest checkpoint in the bucket;
	// CheckpointSeconds how long the node's last checkpoint took.
	CheckpointBytes   int64   `json:"checkpoint_bytes"`
	CheckpointSeconds float64 `json:"checkpoint_seconds"`
	// NodeRSSBytes is the node's resident memory.
	NodeRSSBytes int64 `json:"node_rss_bytes"`
	// Errors are the probes that failed; their figures are 0.
	Errors []string `json:"errors,omitempty"`
}

// SoakNode is what one scrape of the node's metrics found.
type SoakNode struct {
	CheckpointSeconds float64
	RSSBytes          int64
}

// SoakProbes are where a sample's figures come from. Each is called once
// per sample; a failing one leaves its figures at 0 and its error in the
// sample.
type SoakProbes struct {
	Acked           func() int64
	RedisUsedMemory func(context.Context) (int64, error)
	IndexEntries    func(context.Context) (int64, error)
	Bucket          func(context.Context) (bucket.Usage, error)
	Node            func(context.Context) (SoakNode, error)
}

// take reads every probe for the sample due at elapsed.
func (p SoakProbes) take(ctx context.Context, elapsed time.Duration) SoakSample {
	s := SoakSample{Elapsed: elapsed, Minute: elapsed.Minutes(), Acked: p.Acked()}
	fail := func(what string, err error) {
		s.Errors = append(s.Errors, fmt.Sprintf("%s: %v", what, err))
	}
	var err error
	if s.RedisUsedMemory, err = p.RedisUsedMemory(ctx); err != nil {
		fail("redis used_memory", err)
	}
	if s.IndexEntries, err = p.IndexEntries(ctx); err != nil {
		fail("index entries", err)
	}
	if b, err := p.Bucket(ctx); err != nil {
		fail("bucket", err)
	} else {
		s.BucketObjects, s.BucketBytes, s.BucketPrefixes, s.CheckpointBytes = b.Objects, b.Bytes, b.Prefixes, b.NewestCheckpointBytes
	}
	if n, err := p.Node(ctx); err != nil {
		fail("node metrics", err)
	} else {
		s.CheckpointSeconds, s.NodeRSSBytes = n.CheckpointSeconds, n.RSSBytes
	}
	return s
}

// soakProbeTimeout bounds one sample's probes together, so that a stuck
// server delays the schedule by at most this much and shows as probe
// errors.
const soakProbeTimeout = 30 * time.Second

// soakClock is the time a sampler runs by: the wall clock, or a test's.
type soakClock interface {
	// SleepUntil waits until t or ctx's end, and reports whether t came.
	SleepUntil(ctx context.Context, t time.Time) bool
}

type wallClock struct{}

func (wallClock) SleepUntil(ctx context.Context, t time.Time) bool { return sleepUntil(ctx, t) }

// sampleSoak takes a sample every interval after start, the last one at
// start+duration, passing each to onSample (if set), until then or ctx's
// end; it returns the samples taken. A sample that is late (the one
// before took longer than the interval) is taken at once, still labelled
// with the time it was due.
func sampleSoak(ctx context.Context, clk soakClock, start time.Time, duration, interval time.Duration,
	probes SoakProbes, onSample func(SoakSample)) []SoakSample {
	var samples []SoakSample
	for k := 1; ; k++ {
		due := min(time.Duration(k)*interval, duration)
		if !clk.SleepUntil(ctx, start.Add(due)) {
			return samples
		}
		pctx, cancel := context.WithTimeout(ctx, soakProbeTimeout)
		s := probes.take(pctx, due)
		cancel()
		if ctx.Err() != nil {
			// Interrupted while sampling: the figures are not whole.
			return samples
		}
		samples = append(samples, s)
		if onSample != nil {
			onSample(s)
		}
		if due >= duration {
			return samples
		}
	}
}

// SoakColumn is one figure of the soak table.
type SoakColumn struct {
	Name string
	// Bounded columns must stay within SoakBound of the reference.
	Bounded bool
	value   func(SoakSample) float64
	format  func(float64) string
}

func count(v float64) string   { return fmt.Sprintf("%.0f", v) }
func mib(v float64) string     { return fmt.Sprintf("%.2f", v/(1<<20)) }
func seconds(v float64) string { return fmt.Sprintf("%.3f", v) }

// SoakColumns are the columns of the table, CSV and checks, in order.
var SoakColumns = []SoakColumn{
	{"minute", false, func(s SoakSample) float64 { return s.Minute }, func(v float64) string { return fmt.Sprintf("%.2f", v) }},
	{"acked", false, func(s SoakSample) float64 { return float64(s.Acked) }, count},
	{"redis_used_mib", true, func(s SoakSample) float64 { return float64(s.RedisUsedMemory) }, mib},
	{"index_entries", true, func(s SoakSample) float64 { return float64(s.IndexEntries) }, count},
	{"bucket_objects", true, func(s SoakSample) float64 { return float64(s.BucketObjects) }, count},
	{"bucket_mib", true, func(s SoakSample) float64 { return float64(s.BucketBytes) }, mib},
	{"checkpoint_kib", true, func(s SoakSample) float64 { return float64(s.CheckpointBytes) }, func(v float64) string { return fmt.Sprintf("%.1f", v/1024) }},
	{"checkpoint_s", true, func(s SoakSample) float64 { return s.CheckpointSeconds }, seconds},
	{"node_rss_mib", true, func(s SoakSample) float64 { return float64(s.NodeRSSBytes) }, mib},
}

// SoakCheck is the verdict on one bounded column.
type SoakCheck struct {
	Column    string  `json:"column"`
	Reference float64 `json:"reference"`
	Final     float64 `json:"final"`
	// Ratio is Final/Reference: 1 when both are 0, null when only the
	// reference is.
	Ratio  *float64 `json:"ratio"`
	Within bool     `json:"within_bound"`
}

// CheckSoak picks the reference sample (the first due at or after
// referenceAt) and compares the last sample with it, column by column.
// It returns -1 and no checks when no sample was due by then.
func CheckSoak(samples []SoakSample, referenceAt time.Duration) (reference int, checks []SoakCheck) {
	reference = -1
	for i, s := range samples {
		if s.Elapsed >= referenceAt {
			reference = i
			break
		}
	}
	if reference < 0 {
		return -1, nil
	}
	ref, last := samples[reference], samples[len(samples)-1]
	for _, c := range SoakColumns {
		if !c.Bounded {
			continue
		}
		ch := SoakCheck{Column: c.Name, Reference: c.value(ref), Final: c.value(last)}
		switch {
		case ch.Reference > 0:
			r := ch.Final / ch.Reference
			ch.Ratio, ch.Within = &r, r <= SoakBound
		case ch.Final <= 0:
			r := 1.0
			ch.Ratio, ch.Within = &r, true
		}
		checks = append(checks, ch)
	}
	return reference, checks
}

// soakAcked is the acked count the workload's progress reports keep.
type soakAcked struct{ n atomic.Int64 }

func (a *soakAcked) progress(p Progress) { a.n.Store(p.Acked) }
