package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

// tieringOptions are the settings of the background jobs that keep cost
// following live data (retention, garbage collection, group expiry). Every
// node runs every job; a lease in Redis lets one node at a time do each.
type tieringOptions struct {
	gc gcOptions
}

// defaultTieringOptions are the defaults of the jobs' flags.
func defaultTieringOptions() tieringOptions {
	return tieringOptions{
		gc: defaultGCOptions(),
	}
}

// addTieringFlags declares the jobs' flags, which serve and dev share.
func addTieringFlags(f *pflag.FlagSet, o *tieringOptions) {
	addGCFlags(f, &o.gc)
}

// tieringJobs returns the background jobs this node runs beside the
// ingest node, checking the settings first.
func tieringJobs(o tieringOptions, nodeID string, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) ([]*tiering.Job, error) {
	var jobs []*tiering.Job
	gc, err := gcJob(o.gc, nodeID, meta, store, reg, log)
	if err != nil {
		return nil, err
	}
	if gc != nil {
		jobs = append(jobs, gc)
	}
	return jobs, nil
}

// --- garbage collection (tiering.Collector) ---

// gcOptions are the garbage collector's flags. checkpointInterval is not a
// flag of its own: serve copies --checkpoint-interval into it, since the
// grace must cover two checkpoints.
type gcOptions struct {
	interval           time.Duration
	grace              time.Duration
	batch              int
	checkpointInterval time.Duration
}

func defaultGCOptions() gcOptions {
	return gcOptions{interval: time.Minute, grace: tiering.DefaultGCGrace, batch: tiering.DefaultGCBatch}
}

func addGCFlags(f *pflag.FlagSet, o *gcOptions) {
	f.DurationVar(&o.interval, "gc-interval", o.interval, "how often garbage collection runs (on one node at a time); 0 disables it")
	f.DurationVar(&o.grace, "gc-grace", o.grace,
		"how long an object stays unreferenced before garbage collection deletes it; at least twice --checkpoint-interval (the default grows to that)")
	f.IntVar(&o.batch, "gc-batch", o.batch, "chunks garbage collection examines, and pending objects it deletes at most, per run")
}

// validate reports every bad garbage collection flag.
func (o gcOptions) validate() error {
	var errs []error
	if o.interval < 0 {
		errs = append(errs, fmt.Errorf("--gc-interval %v is negative", o.interval))
	}
	if o.grace <= 0 {
		errs = append(errs, fmt.Errorf("--gc-grace %v is not positive", o.grace))
	}
	if o.batch < 1 || o.batch > tiering.MaxGCBatch {
		errs = append(errs, fmt.Errorf("--gc-batch %d not in [1, %d]", o.batch, tiering.MaxGCBatch))
	}
	// An object is deleted only once a checkpoint newer than its mark is
	// in the bucket; a grace of two checkpoint intervals means the two
	// newest checkpoints were most likely both taken after the mark, so a
	// restore that falls back to the second newest (the newest did not
	// decode) finds every chunk it names too.
	if o.checkpointInterval > 0 && o.effectiveGrace() < 2*o.checkpointInterval {
		errs = append(errs, fmt.Errorf("--gc-grace %v is under twice --checkpoint-interval %v: a restore from the checkpoint before the newest could name chunks already deleted",
			o.grace, o.checkpointInterval))
	}
	return errors.Join(errs...)
}

// effectiveGrace is --gc-grace, except that the default grows to twice
// the checkpoint interval when that is longer, so that raising
// --checkpoint-interval alone does not stop a node from starting. (An
// explicit --gc-grace equal to the default grows too, which only delays
// deletions.)
func (o gcOptions) effectiveGrace() time.Duration {
	if o.grace == tiering.DefaultGCGrace {
		return max(o.grace, 2*o.checkpointInterval)
	}
	return o.grace
}

// gcJob returns the garbage collection job, or nil when --gc-interval is 0.
func gcJob(o gcOptions, nodeID string, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) (*tiering.Job, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.interval == 0 {
		return nil, nil
	}
	return tiering.NewGCJob(tiering.JobConfig{Holder: nodeID, Interval: o.interval, LeaseTTL: max(2*o.interval, 10*time.Second)},
		tiering.GCConfig{Grace: o.effectiveGrace(), Batch: o.batch, CheckpointGate: o.checkpointInterval > 0}, meta, store, reg, log)
}
