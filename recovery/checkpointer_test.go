package recovery_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/recovery"
)

// metric returns the value of the named counter or gauge in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func checkpointKeys(t *testing.T, store objectstore.Store) []string {
	t.Helper()
	var keys []string
	for obj, err := range store.List(t.Context(), bucket.CheckpointPrefix) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Key)
	}
	return keys
}

func TestCheckpointerLeaseAndPrune(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newMeta(t)
	ra, rb := prometheus.NewRegistry(), prometheus.NewRegistry()
	a, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "node-a", Keep: 2}, meta, store, ra, nil)
	if err != nil {
		t.Fatal(err)
	}
	hourAhead := time.Now().Add(time.Hour)
	b, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "node-b", Keep: 2, Now: func() time.Time { return hourAhead }}, meta, store, rb, nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := func(c *recovery.Checkpointer, want bool) {
		t.Helper()
		wrote, err := c.Tick(ctx)
		if err != nil || wrote != want {
			t.Fatalf("Tick = %v, %v; want %v", wrote, err, want)
		}
	}
	// b knows of no checkpoint yet: its age counts from its start, which
	// is now on its stopped clock.
	if age := metric(t, rb, "mamba_checkpoint_age_seconds"); age != 0 {
		t.Fatalf("age before any checkpoint = %v, want 0", age)
	}
	tick(a, true)
	tick(b, false) // a holds the lease
	for range 3 {
		tick(a, true)
	}
	keys := checkpointKeys(t, store)
	if len(keys) != 2 {
		t.Fatalf("checkpoints in the bucket = %v, want the newest 2", keys)
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, "-node-a.ckpt") {
			t.Fatalf("checkpoint %s not written by the lease holder", k)
		}
	}
	if n := metric(t, ra, "mamba_checkpoints_written_total"); n != 4 {
		t.Errorf("a wrote %v checkpoints, want 4", n)
	}
	if n := metric(t, ra, "mamba_checkpoint_last_bytes"); n < recovery.CheckpointHeaderSize {
		t.Errorf("last checkpoint size %v", n)
	}
	if d := metric(t, ra, "mamba_checkpoint_last_duration_seconds"); d <= 0 {
		t.Errorf("last checkpoint duration %v", d)
	}
	if age := metric(t, ra, "mamba_checkpoint_age_seconds"); age > 60 {
		t.Errorf("a's checkpoint age %v", age)
	}
	// b learned from Redis when a last wrote: an hour ago on b's clock.
	tick(b, false)
	if age := metric(t, rb, "mamba_checkpoint_age_seconds"); age < 3500 || age > 3700 {
		t.Errorf("b's checkpoint age = %v, want about 3600", age)
	}
	if n := metric(t, rb, "mamba_checkpoints_written_total"); n != 0 {
		t.Errorf("b wrote %v checkpoints without the lease", n)
	}

	// Closing the holder writes a last checkpoint and hands the job on.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := metric(t, ra, "mamba_checkpoints_written_total"); n != 5 {
		t.Errorf("a wrote %v checkpoints after Close, want 5", n)
	}
	tick(a, false) // closed
	tick(b, true)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	keys = checkpointKeys(t, store)
	if len(keys) != 2 || !strings.HasSuffix(keys[1], "-node-b.ckpt") {
		t.Fatalf("checkpoints after b took over = %v", keys)
	}
}

// failingStore fails every Put.
type failingStore struct{ objectstore.Store }

func (failingStore) Put(context.Context, string, []byte) error {
	return objectstore.Retryable(errors.New("bucket down"))
}

func TestCheckpointerCountsFailures(t *testing.T) {
	meta := newMeta(t)
	reg := prometheus.NewRegistry()
	c, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "n"}, meta, failingStore{objectstore.NewMemory()}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tick(t.Context()); err == nil || !strings.Contains(err.Error(), "bucket down") {
		t.Fatalf("Tick with a failing bucket: err = %v", err)
	}
	if n := metric(t, reg, "mamba_checkpoint_failures_total"); n != 1 {
		t.Errorf("failures = %v, want 1", n)
	}
	if err := c.Close(t.Context()); err == nil {
		t.Error("Close wrote its final checkpoint to a failing bucket")
	}
}

func TestCheckpointerRun(t *testing.T) {
	store := objectstore.NewMemory()
	meta := newMeta(t)
	reg := prometheus.NewRegistry()
	c, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "n", Interval: 20 * time.Millisecond, Keep: 3}, meta, store, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// Wait for three intervals' worth of checkpoints.
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, reg, "mamba_checkpoints_written_total") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Run wrote fewer than 3 checkpoints in 30s")
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if keys := checkpointKeys(t, store); len(keys) < 1 || len(keys) > 3 {
		t.Fatalf("checkpoints kept = %v, want at most 3", keys)
	}
}

func TestCheckpointConfigValidate(t *testing.T) {
	if err := (recovery.CheckpointConfig{NodeID: "n"}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := recovery.CheckpointConfig{NodeID: "a b", Interval: time.Millisecond, Keep: -1, LeaseTTL: time.Microsecond}.Validate()
	for _, want := range []string{"node id", "checkpoint interval", "checkpoints kept", "lease ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %s", err, want)
		}
	}
}
