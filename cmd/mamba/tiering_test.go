package main

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// The group janitor's flags: their defaults build the "groups" job, days
// are accepted, an interval of 0 disables the job and a negative one is
// refused.
func TestGroupJanitorFlags(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	meta := metadata.New(rdb, metadata.Options{})
	parse := func(args ...string) (tieringOptions, error) {
		o := defaultTieringOptions()
		f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		addTieringFlags(f, &o)
		return o, f.Parse(args)
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(o.groups.retention) != 7*24*time.Hour || o.groups.interval != time.Minute {
		t.Fatalf("defaults: %+v", o.groups)
	}
	if jobs, err := tieringJobs(o, "node-a", meta, objectstore.NewMemory(), nil, nil); err != nil || countJobs(jobs, "groups") != 1 {
		t.Fatalf("default jobs: %d, %v; want the groups job", len(jobs), err)
	}
	if o, err = parse("--group-retention", "30d", "--group-janitor-interval", "0"); err != nil {
		t.Fatal(err)
	}
	if time.Duration(o.groups.retention) != 30*24*time.Hour {
		t.Fatalf("--group-retention 30d = %v", time.Duration(o.groups.retention))
	}
	if jobs, err := tieringJobs(o, "node-a", meta, objectstore.NewMemory(), nil, nil); err != nil || countJobs(jobs, "groups") != 0 {
		t.Fatalf("interval 0: %d jobs, %v; want none", len(jobs), err)
	}
	if o, err = parse("--group-janitor-interval", "-1s"); err != nil {
		t.Fatal(err)
	}
	if _, err := tieringJobs(o, "node-a", meta, nil, nil, nil); err == nil {
		t.Fatal("a negative --group-janitor-interval was accepted")
	}
	for _, bad := range []string{"-1d", "soon", "1.5d"} {
		if _, err := parse("--group-retention", bad); err == nil {
			t.Errorf("--group-retention %s was accepted", bad)
		}
	}
	if got := cliflag.EnvName("group-retention"); got != "MAMBA_GROUP_RETENTION" {
		t.Fatalf("env name %s", got)
	}
}
