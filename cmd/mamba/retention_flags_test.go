package main

import (
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

func TestRetentionFlags(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	jobs := func(args ...string) (int, error) {
		o := defaultTieringOptions()
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addTieringFlags(f, &o)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		js, err := tieringJobs(o, "node-a", meta, objectstore.NewMemory(), prometheus.NewRegistry(), nil)
		return countJobs(js, tiering.RetentionJobName), err
	}
	if n, err := jobs(); n != 1 || err != nil {
		t.Fatalf("defaults: %d jobs, %v; want the retention job", n, err)
	}
	if n, err := jobs("--retention-interval", "0"); n != 0 || err != nil {
		t.Fatalf("--retention-interval 0: %d jobs, %v; want none", n, err)
	}
	if n, err := jobs("--retention-max-trim", "1", "--retention-interval", "5s"); n != 1 || err != nil {
		t.Fatalf("max trim 1: %d jobs, %v", n, err)
	}
	for _, args := range [][]string{
		{"--retention-max-trim", "0"},
		{"--retention-max-trim", "1001"},
		{"--retention-interval", "-1s"},
	} {
		if _, err := jobs(args...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v, want an error naming the flag", args, err)
		}
	}
}
