package recovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/recovery"
)

// stalledPuts holds every checkpoint PUT until release is closed.
type stalledPuts struct {
	objectstore.Store
	entered chan struct{}
	release chan struct{}
}

func (s *stalledPuts) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, bucket.CheckpointPrefix) {
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Put(ctx, key, data)
}

// TestCheckpointerRenewsLeaseDuringLongWrite stalls a checkpoint's PUT for
// several lease TTLs: the writer keeps renewing its lease, so a second node
// never starts a checkpoint of its own meanwhile.
func TestCheckpointerRenewsLeaseDuringLongWrite(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	const ttl = 300 * time.Millisecond
	stalled := &stalledPuts{Store: objectstore.NewMemory(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	cfg := recovery.CheckpointConfig{NodeID: "node-a", Interval: 10 * time.Millisecond, LeaseTTL: ttl}
	a, err := recovery.NewCheckpointer(cfg, meta, stalled, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeID = "node-b"
	b, err := recovery.NewCheckpointer(cfg, meta, objectstore.NewMemory(), prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		wrote, err := a.Tick(t.Context())
		if err == nil && !wrote {
			err = context.Canceled
		}
		done <- err
	}()
	<-stalled.entered
	// Watch the lease's TTL rise again and again: each rise is a renewal.
	// Six renewals at a third of the TTL each span two whole TTLs.
	key := "mamba:job:" + recovery.CheckpointJob + ":lease"
	prev, renewals := time.Duration(0), 0
	deadline := time.Now().Add(20 * time.Second)
	for renewals < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("saw %d lease renewals in 20s, want 6", renewals)
		}
		left, err := rdb.PTTL(t.Context(), key).Result()
		if err != nil || left <= 0 {
			t.Fatalf("lease TTL = %v, %v: the lease lapsed during the write", left, err)
		}
		if left > prev && prev > 0 {
			renewals++
		}
		prev = left
		if wrote, err := b.Tick(t.Context()); err != nil || wrote {
			t.Fatalf("second node's tick during the write = %v, %v; want no checkpoint", wrote, err)
		}
	}
	close(stalled.release)
	if err := <-done; err != nil {
		t.Fatalf("stalled checkpoint = %v", err)
	}
	if holder, _ := meta.JobHolder(t.Context(), recovery.CheckpointJob); holder != "node-a" {
		t.Fatalf("lease holder after the write = %q, want node-a", holder)
	}
}
