package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/bench"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// TestSoakShort runs `mamba-bench soak` for 4 s with a sample every 2 s
// against its own MinIO, Redis and node, and checks that both samples
// hold every figure, that the checks compare the last with the first (the
// reference of so short a run), and that the exit status follows the
// verdict. It needs minio and redis-server: a missing one skips locally
// and fails in CI.
func TestSoakShort(t *testing.T) {
	for _, name := range []string{"minio", "redis-server"} {
		testserver.RequireBinary(t, name)
	}
	bin, err := buildBench()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"soak", "--duration", "4s", "--sample-interval", "2s", "--retention", "2s",
		"--rate", "400", "--record-bytes", "256", "--partitions", "2",
		"--node-arg=--checkpoint-interval=500ms", "--node-arg=--flush-interval=50ms", "--node-arg=--key-prefix=soak",
		"-o", "json", "--node-binary", testserver.MambaBinary(t)}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep bench.SoakReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("mamba-bench %s: %v; report is not JSON: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), runErr, err, stdout.String(), stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case rep.Pass() && runErr != nil:
		t.Errorf("a passing soak exited with %v\n%s", runErr, stderr.String())
	case !rep.Pass() && (!errors.As(runErr, &exit) || !strings.Contains(stderr.String(), "grew beyond 1.25x")):
		t.Errorf("a failing soak exited with %v\n%s", runErr, stderr.String())
	}

	if len(rep.Samples) != 2 || rep.Samples[0].Elapsed != 2*time.Second || rep.Samples[1].Elapsed != 4*time.Second {
		t.Fatalf("samples = %+v, want two, due at 2s and 4s", rep.Samples)
	}
	for i, s := range rep.Samples {
		if len(s.Errors) > 0 {
			t.Errorf("sample %d: probe errors %q", i, s.Errors)
		}
		if s.Acked <= 0 || s.RedisUsedMemory <= 0 || s.IndexEntries <= 0 || s.BucketObjects <= 0 || s.BucketBytes <= 0 ||
			s.CheckpointBytes <= 0 || s.CheckpointSeconds <= 0 || s.NodeRSSBytes <= 0 {
			t.Errorf("sample %d has a figure at zero: %+v", i, s)
		}
		if c := s.BucketPrefixes["chunks/"]; c.Objects <= 0 || c.Objects >= s.BucketObjects {
			t.Errorf("sample %d: chunks %+v of %d objects; want chunks and the topic config and checkpoints beside them", i, c, s.BucketObjects)
		}
	}
	if a, b := rep.Samples[0], rep.Samples[1]; b.Acked <= a.Acked || b.BucketObjects < a.BucketObjects {
		t.Errorf("nothing was produced between the samples: %+v then %+v", a, b)
	}
	if rep.Reference != 0 || len(rep.Checks) != 7 || rep.Interrupted || rep.Produce == nil || rep.Produce.Errors != 0 {
		t.Errorf("reference %d, %d checks, interrupted %v, produce %+v; want 0, 7, false, no errors",
			rep.Reference, len(rep.Checks), rep.Interrupted, rep.Produce)
	}
	s := rep.Settings
	if s.RedisFsync != "always" || s.Retention != "2s" || s.Partitions != 2 || len(s.NodeArgs) != 3 {
		t.Errorf("settings not echoed: %+v", s)
	}
	if !strings.Contains(stderr.String(), "minute 0.07: ") {
		t.Errorf("no progress line per sample on stderr:\n%s", stderr.String())
	}
}
