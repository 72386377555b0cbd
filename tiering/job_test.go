package tiering

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

func miniStore(t *testing.T) (*metadata.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return metadata.New(rdb, metadata.Options{}), mr
}

func TestJobRunsOnOneNodeAndStopsWhenItLosesTheLease(t *testing.T) {
	meta, mr := miniStore(t)
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	var ran []string
	newJob := func(holder string, pass Pass) *Job {
		j, err := NewJob(JobConfig{Name: "test", Holder: holder, Interval: time.Minute, LeaseTTL: 10 * time.Second}, meta, pass, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	count := func(holder string) Pass {
		return func(ctx context.Context, renew func() error) error {
			ran = append(ran, holder)
			return renew()
		}
	}
	a, b := newJob("a", count("a")), newJob("b", count("b"))
	for _, j := range []*Job{a, b, a} {
		if _, err := j.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(ran) != 2 || ran[0] != "a" || ran[1] != "a" {
		t.Fatalf("passes ran on %v, want a twice and b never", ran)
	}
	if _, ok, _ := meta.JobLastRun(ctx, "test"); !ok {
		t.Fatal("a completed pass was not recorded")
	}
	// a stalls past its lease; b takes the job over; a's next renewal
	// fails and its pass stops.
	stalled := newJob("a", func(ctx context.Context, renew func() error) error {
		mr.FastForward(11 * time.Second)
		if _, err := b.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		return renew()
	})
	ran = nil
	if _, err := stalled.RunOnce(ctx); !errors.Is(err, errLeaseLost) {
		t.Fatalf("stalled pass: %v, want lease lost", err)
	}
	if len(ran) != 1 || ran[0] != "b" {
		t.Fatalf("passes during the stall: %v, want b's", ran)
	}
	if got := testutil.ToFloat64(a.runs.WithLabelValues("lost_lease")); got != 1 {
		t.Fatalf("lost_lease runs = %v, want 1", got)
	}
}
