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
	// Retention (tiering.Retention).
	retentionInterval time.Duration // 0 disables the job
	retentionMaxTrim  int
}

// defaultTieringOptions are the defaults of the jobs' flags.
func defaultTieringOptions() tieringOptions {
	return tieringOptions{
		// Retention.
		retentionInterval: tiering.DefaultRetentionInterval,
		retentionMaxTrim:  metadata.MaxTrimEntries,
	}
}

// addTieringFlags declares the jobs' flags, which serve and dev share.
func addTieringFlags(f *pflag.FlagSet, o *tieringOptions) {
	// Retention.
	f.DurationVar(&o.retentionInterval, "retention-interval", o.retentionInterval,
		"time between retention passes, which trim index entries past a topic's retention_ms or retention_bytes (0 disables retention)")
	f.IntVar(&o.retentionMaxTrim, "retention-max-trim", o.retentionMaxTrim,
		fmt.Sprintf("most index entries a retention step trims from one partition (1..%d)", metadata.MaxTrimEntries))
}

// tieringJobs returns the background jobs this node runs beside the
// ingest node, checking the settings first.
func tieringJobs(o tieringOptions, nodeID string, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) ([]*tiering.Job, error) {
	_ = store
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

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return jobs, nil
}
