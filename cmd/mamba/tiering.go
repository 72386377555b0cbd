package main

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

// tieringOptions are the settings of the background jobs that keep cost
// following live data (retention, garbage collection, group expiry). Every
// node runs every job; a lease in Redis lets one node at a time do each.
type tieringOptions struct{}

// defaultTieringOptions are the defaults of the jobs' flags.
func defaultTieringOptions() tieringOptions {
	return tieringOptions{}
}

// addTieringFlags declares the jobs' flags, which serve and dev share.
func addTieringFlags(f *pflag.FlagSet, o *tieringOptions) {
	_ = f
	_ = o
}

// tieringJobs returns the background jobs this node runs beside the
// ingest node, checking the settings first.
func tieringJobs(o tieringOptions, nodeID string, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer, log *slog.Logger) ([]*tiering.Job, error) {
	_, _, _, _, _, _ = o, nodeID, meta, store, reg, log
	return nil, nil
}
