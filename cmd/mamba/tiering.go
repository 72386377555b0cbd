package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

// tieringOptions are the settings of the background jobs that keep cost
// following live data (retention, garbage collection, group expiry). Every
// node runs every job; a lease in Redis lets one node at a time do each.
type tieringOptions struct {
	// Retention (tiering.Retention).
	retentionInterval time.Duration // 0 disables the job
	retentionMaxTrim  int

	gc     gcOptions
	groups groupJanitorOptions
}

// defaultTieringOptions are the defaults of the jobs' flags.
func defaultTieringOptions() tieringOptions {
	return tieringOptions{
		// Retention.
		retentionInterval: tiering.DefaultRetentionInterval,
		retentionMaxTrim:  metadata.MaxTrimEntries,

		gc:     defaultGCOptions(),
		groups: defaultGroupJanitorOptions(),
	}
}

// addTieringFlags declares the jobs' flags, which serve and dev share.
func addTieringFlags(f *pflag.FlagSet, o *tieringOptions) {
	// Retention.
	f.DurationVar(&o.retentionInterval, "retention-interval", o.retentionInterval,
		"time between retention passes, which trim index entries past a topic's retention_ms or retention_bytes (0 disables retention)")
	f.IntVar(&o.retentionMaxTrim, "retention-max-trim", o.retentionMaxTrim,
		fmt.Sprintf("most index entries a retention step trims from one partition (1..%d)", metadata.MaxTrimEntries))

	addGCFlags(f, &o.gc)
	addGroupJanitorFlags(f, &o.groups)
}

// tieringJobs returns the background jobs this node runs beside the
// ingest node, checking the settings first.
func tieringJobs(o tieringOptions, nodeID string, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) ([]*tiering.Job, error) {
	var jobs []*tiering.Job
	var errs []error

	// Retention.
	if o.retentionInterval < 0 {
		errs = append(errs, fmt.Errorf("--retention-interval %v: want 0 (disabled) or more", o.retentionInterval))
	}
	if o.retentionMaxTrim < 1 || o.retentionMaxTrim > metadata.MaxTrimEntries {
		errs = append(errs, fmt.Errorf("--retention-max-trim %d: want 1..%d", o.retentionMaxTrim, metadata.MaxTrimEntries))
	} else if o.retentionInterval > 0 {
		j, err := tiering.NewRetentionJob(
			tiering.JobConfig{Name: tiering.RetentionJobName, Holder: nodeID, Interval: o.retentionInterval, LeaseTTL: tiering.DefaultRetentionLeaseTTL},
			tiering.RetentionConfig{MaxTrim: o.retentionMaxTrim}, meta, reg, log)
		if err != nil {
			errs = append(errs, err)
		} else {
			jobs = append(jobs, j)
		}
	}

	if j, err := gcJob(o.gc, nodeID, meta, store, reg, log); err != nil {
		errs = append(errs, err)
	} else if j != nil {
		jobs = append(jobs, j)
	}

	if j, err := groupJanitorJob(o.groups, nodeID, meta, reg, log); err != nil {
		errs = append(errs, err)
	} else if j != nil {
		jobs = append(jobs, j)
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return jobs, nil
}

// --- Consumer group expiry (the "groups" job) ---

// groupJanitorOptions configure the group janitor (tiering.GroupJanitor).
type groupJanitorOptions struct {
	// retention: how long a group with no live member is kept after its
	// last activity; 0 disables expiry.
	retention cliflag.Duration
	// interval between passes; 0 disables the job.
	interval time.Duration
}

func defaultGroupJanitorOptions() groupJanitorOptions {
	return groupJanitorOptions{
		retention: cliflag.Duration(tiering.DefaultGroupRetention),
		interval:  tiering.DefaultGroupJanitorInterval,
	}
}

func addGroupJanitorFlags(f *pflag.FlagSet, o *groupJanitorOptions) {
	f.Var(&o.retention, "group-retention",
		"how long a consumer group with no live member is kept after its last join, heartbeat, leave or offset commit, e.g. 7d or 36h (0 keeps groups forever)")
	f.DurationVar(&o.interval, "group-janitor-interval", o.interval,
		"time between passes of the group janitor, which expires idle groups and removes offsets of deleted topics (0 disables it)")
}

// groupLeaseTTL is how long the groups job's lease outlives its last
// renewal; the pass renews between steps of a few Redis calls each.
const groupLeaseTTL = 30 * time.Second

// groupJanitorJob builds the "groups" job, or nil when it is disabled.
func groupJanitorJob(o groupJanitorOptions, nodeID string, meta *metadata.Store, reg prometheus.Registerer, log *slog.Logger) (*tiering.Job, error) {
	if o.interval < 0 {
		return nil, fmt.Errorf("--group-janitor-interval %v is negative", o.interval)
	}
	if o.interval == 0 {
		return nil, nil
	}
	jan, err := tiering.NewGroupJanitor(meta, tiering.GroupJanitorConfig{Retention: time.Duration(o.retention)}, reg, log)
	if err != nil {
		return nil, err
	}
	return tiering.NewJob(tiering.JobConfig{Name: "groups", Holder: nodeID, Interval: o.interval, LeaseTTL: groupLeaseTTL}, meta, jan.Pass, reg, log)
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
