// Package testnode runs an in-process ingest node for tests of the
// packages above ingest (httpapi, recovery, tiering): started on the
// given metadata store and bucket, drained and stopped when the test ends.
package testnode

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// Run builds a node from cfg and runs it until the test ends, when it is
// drained (every accepted record answered) within 30 s; a drain that
// fails fails the test. reg may be nil (a registry of its own).
func Run(t testing.TB, cfg ingest.Config, meta *metadata.Store, store objectstore.Store, reg prometheus.Registerer) *ingest.Node {
	t.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	n, err := ingest.New(cfg, meta, store, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer dcancel()
		if err := n.Close(dctx); err != nil {
			t.Errorf("close node %s: %v", cfg.NodeID, err)
		}
		cancel()
		<-done
	})
	return n
}
