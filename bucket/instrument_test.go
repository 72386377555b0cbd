package bucket_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/storetest"
)

// The wrapper keeps every guarantee of the store it wraps.
func TestInstrumentedConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objectstore.Store {
		return bucket.Instrument(objectstore.NewMemory(), prometheus.NewRegistry())
	})
}

func TestInstrumentedCounts(t *testing.T) {
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	s := bucket.Instrument(objectstore.NewMemory(), reg)
	if err := s.Put(ctx, "a/1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/2", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "", nil); err == nil {
		t.Fatal("Put of an empty key succeeded")
	}
	if b, err := s.Get(ctx, "a/1"); err != nil || string(b) != "hello" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if _, err := s.Get(ctx, "missing"); !errors.Is(err, objectstore.ErrNotExist) {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if b, err := s.GetRange(ctx, "a/1", 1, 3); err != nil || string(b) != "ell" {
		t.Fatalf("GetRange = %q, %v", b, err)
	}
	if _, err := s.Stat(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range s.List(ctx, "a/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	// A listing the caller stops early still counts once.
	for range s.List(ctx, "a/") {
		break
	}
	if err := s.Delete(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Stat(cancelled, "a/1"); err == nil {
		t.Fatal("Stat with a cancelled context succeeded")
	}
	if n != 2 {
		t.Fatalf("listed %d objects, want 2", n)
	}

	for _, tc := range []struct {
		op, result string
		want       float64
	}{
		{bucket.OpPut, bucket.ResultOK, 2},
		{bucket.OpPut, bucket.ResultError, 1},
		{bucket.OpGet, bucket.ResultOK, 1},
		{bucket.OpGet, bucket.ResultNotFound, 1},
		{bucket.OpGetRange, bucket.ResultOK, 1},
		{bucket.OpStat, bucket.ResultOK, 1},
		{bucket.OpStat, bucket.ResultError, 1},
		{bucket.OpList, bucket.ResultOK, 2},
		{bucket.OpDelete, bucket.ResultOK, 1},
	} {
		if got := value(t, reg, "mamba_objectstore_requests_total", "op", tc.op, "result", tc.result); got != tc.want {
			t.Errorf("requests{op=%s,result=%s} = %v, want %v", tc.op, tc.result, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name, op string
		want     float64
	}{
		{"mamba_objectstore_written_bytes_total", bucket.OpPut, 7},
		{"mamba_objectstore_read_bytes_total", bucket.OpGet, 5},
		{"mamba_objectstore_read_bytes_total", bucket.OpGetRange, 3},
	} {
		if got := value(t, reg, tc.name, "op", tc.op); got != tc.want {
			t.Errorf("%s{op=%s} = %v, want %v", tc.name, tc.op, got, tc.want)
		}
	}
	// Every request was timed: one observation per request.
	for op, want := range map[string]float64{bucket.OpPut: 3, bucket.OpGet: 2, bucket.OpGetRange: 1, bucket.OpStat: 2, bucket.OpList: 2, bucket.OpDelete: 1} {
		if got := value(t, reg, "mamba_objectstore_request_seconds", "op", op); got != want {
			t.Errorf("request_seconds{op=%s} has %v observations, want %v", op, got, want)
		}
	}

	// A second store instrumented on the same registry adds to the same
	// series, and instrumenting an instrumented store changes nothing.
	s2 := bucket.Instrument(objectstore.NewMemory(), reg)
	if bucket.Instrument(s2, prometheus.NewRegistry()) != s2 {
		t.Error("Instrument wrapped an instrumented store again")
	}
	if err := s2.Put(ctx, "b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "mamba_objectstore_requests_total", "op", bucket.OpPut, "result", bucket.ResultOK); got != 3 {
		t.Errorf("puts after a second store's = %v, want 3", got)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// value returns the counter's value, or the histogram's sample count, of
// the series of the named family with the given label pairs.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
