package main

import (
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

func TestGCOptions(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	// build reports whether the gc job is among the node's jobs.
	build := func(o gcOptions) (int, error) {
		opts := defaultTieringOptions()
		opts.gc = o
		jobs, err := tieringJobs(opts, "n1", meta, objectstore.NewMemory(), nil, nil)
		return countJobs(jobs, tiering.GCJobName), err
	}
	def := defaultGCOptions()
	def.checkpointInterval = 10 * time.Second
	if n, err := build(def); err != nil || n != 1 {
		t.Fatalf("defaults: %d jobs, %v", n, err)
	}
	off := def
	off.interval = 0
	if n, err := build(off); err != nil || n != 0 {
		t.Fatalf("--gc-interval 0: %d jobs, %v", n, err)
	}
	for _, tc := range []struct {
		name string
		edit func(*gcOptions)
		want string
	}{
		{"grace under two checkpoints", func(o *gcOptions) { o.grace = 15 * time.Second }, "twice --checkpoint-interval"},
		{"negative interval", func(o *gcOptions) { o.interval = -time.Second }, "--gc-interval"},
		{"zero grace", func(o *gcOptions) { o.grace = 0 }, "--gc-grace"},
		{"batch", func(o *gcOptions) { o.batch = 0 }, "--gc-batch"},
	} {
		o := def
		tc.edit(&o)
		if _, err := build(o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	// The default grace grows to twice a long checkpoint interval.
	long := def
	long.checkpointInterval = time.Hour
	if _, err := build(long); err != nil || long.effectiveGrace() != 2*time.Hour {
		t.Fatalf("default grace with 1h checkpoints: %v, %v", long.effectiveGrace(), err)
	}
	// Checkpoints off: any positive grace.
	noCkpt := def
	noCkpt.checkpointInterval, noCkpt.grace = 0, time.Second
	if _, err := build(noCkpt); err != nil {
		t.Fatalf("checkpoints off: %v", err)
	}
}

// countJobs counts the jobs named name.
func countJobs(jobs []*tiering.Job, name string) int {
	n := 0
	for _, j := range jobs {
		if j.Name() == name {
			n++
		}
	}
	return n
}
