package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mambamq/mamba/internal/cliflag"
	"github.com/mambamq/mamba/internal/tooling/bench"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// binDir holds the mamba-bench binary the tests build, once.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBench compiles this command once per test binary.
var buildBench = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mamba-bench-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "mamba-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mamba-bench: %v\n%s", err, out)
	}
	return bin, nil
})

// runBenchBinary runs the mamba-bench binary with args, its nodes running
// this module's mamba, and decodes its JSON report into out. The servers
// are needed: a missing one skips locally and fails in CI.
func runBenchBinary(t *testing.T, out any, args ...string) string {
	t.Helper()
	for _, name := range []string{"minio", "redis-server", "nats-server"} {
		testserver.RequireBinary(t, name)
	}
	bin, err := buildBench()
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "--node-binary", testserver.MambaBinary(t))
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mamba-bench %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("mamba-bench %s: report is not JSON: %v\n%s", strings.Join(args, " "), err, stdout.String())
	}
	return stderr.String()
}

// TestBenchLocalTiny runs `mamba-bench --local` at a tiny size so that the
// benchmark cannot rot. It checks that the report is complete and
// consistent, and nothing about speed.
func TestBenchLocalTiny(t *testing.T) {
	var res bench.MambaResult
	progress := runBenchBinary(t, &res, "--local", "--duration", "1500ms", "--warmup", "500ms",
		"--partitions", "4", "--producers", "2", "--groups", "1", "--consumers", "2", "--message-size", "512",
		"--flush-interval", "50ms", "--flush-bytes", "256KiB", "-o", "json")

	if !strings.Contains(progress, "acked") {
		t.Errorf("no progress line on stderr:\n%s", progress)
	}
	if res.Errors != 0 {
		t.Errorf("%d errors", res.Errors)
	}
	p := res.Produce
	if p.Records == 0 || p.Bytes != p.Records*512 {
		t.Errorf("produce: %d records, %d bytes; want some records of 512 bytes each", p.Records, p.Bytes)
	}
	if res.Ack.Count != p.Records {
		t.Errorf("ack latency has %d samples for %d records acknowledged in the window", res.Ack.Count, p.Records)
	}
	if !(res.Ack.P50 <= res.Ack.P99 && res.Ack.P99 <= res.Ack.Max && res.Ack.P50 > 0) {
		t.Errorf("ack latency percentiles out of order: %+v", res.Ack)
	}
	if res.EndToEnd.Count == 0 || res.EndToEnd.Count != res.Consume.Records {
		t.Errorf("end-to-end latency has %d samples for %d records consumed in the window", res.EndToEnd.Count, res.Consume.Records)
	}
	n := res.Node
	if n.PUTs < 1 || n.S3CostPerGiB <= 0 || n.PUTBoundPerSec <= 0 {
		t.Errorf("node: %.0f PUTs, cost %.5f/GiB, bound %.1f/s; want PUTs, a cost and a bound", n.PUTs, n.S3CostPerGiB, n.PUTBoundPerSec)
	}
	if n.CPUCores <= 0 || n.PeakRSSBytes <= 0 || n.RedisCommandsPerSec <= 0 {
		t.Errorf("node: %.2f cores, peak RSS %d, %.0f Redis commands/s; want all above zero", n.CPUCores, n.PeakRSSBytes, n.RedisCommandsPerSec)
	}
	if res.Settings.Partitions != 4 || res.Settings.Producers != 2 || res.Settings.Ack != "durable" || res.Settings.Format != "binary" {
		t.Errorf("settings not echoed: %+v", res.Settings)
	}
}

// TestBenchCompareTiny runs the whole comparison, targets included, at a
// tiny size: every system must be measured and every target evaluated.
func TestBenchCompareTiny(t *testing.T) {
	var res bench.CompareResult
	runBenchBinary(t, &res, "compare", "--runs", "1", "--duration", "1s", "--warmup", "300ms",
		"--producers", "2", "--object-size", "1MiB", "--flush-interval", "50ms", "--partitions", "4",
		"--max-buffered-bytes", "16MiB", "--cache-bytes", "16MiB", "--targets", "-o", "json")

	var systems []string
	for _, r := range res.Rows {
		systems = append(systems, r.System)
		if len(r.Runs) != 1 || r.Runs[0].Produce.Records == 0 || r.MiBPerSec <= 0 || r.Durability == "" {
			t.Errorf("%s: %+v; want one run that acknowledged records", r.System, r)
		}
		if r.System != bench.SysMinIOPut && r.OfPUTLimit <= 0 {
			t.Errorf("%s: no ratio to the PUT limit", r.System)
		}
	}
	if !slices.Equal(systems, bench.AllSystems) {
		t.Errorf("systems %v, want %v", systems, bench.AllSystems)
	}
	var targets []string
	for _, tg := range res.Targets {
		targets = append(targets, tg.Name)
		if tg.Want == "" || tg.Got == "" {
			t.Errorf("target %q: want %q got %q", tg.Name, tg.Want, tg.Got)
		}
	}
	if len(targets) != 8 {
		t.Errorf("targets %q, want 8", targets)
	}
	if len(res.Failures) > 0 {
		t.Errorf("target runs failed: %q", res.Failures)
	}
	if len(res.Extra) != 4 {
		t.Fatalf("%d target runs, want 4", len(res.Extra))
	}
	if half := res.Extra[0]; half.EndToEnd.Count == 0 {
		t.Errorf("half-load run consumed nothing: %+v", half)
	}
	if res.Machine.Cores == 0 || res.Machine.Go == "" {
		t.Errorf("machine not described: %+v", res.Machine)
	}
}

// Bad flags are refused before anything starts, with the flag named.
func TestBenchRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ack", "sometimes"}, "--ack"},
		{[]string{"--format", "xml"}, "--format"},
		{[]string{"-o", "yaml"}, "--output"},
		{[]string{"--node-cpu-profile", "cpu.out"}, "--node-cpu-profile needs --local"},
		{[]string{"--message-size", "4", "--url", "http://127.0.0.1:1"}, "message size"},
		{[]string{"compare", "--systems", "kafka"}, "unknown system"},
		{[]string{"compare", "-o", "yaml"}, "--output"},
		{[]string{"soak", "-o", "yaml"}, "--output"},
		{[]string{"soak", "--redis-aof", "sometimes"}, "--redis-aof"},
		{[]string{"soak", "--rate", "0"}, "rate 0: want a steady rate"},
		{[]string{"soak", "--record-bytes", "4"}, "record bytes 4"},
		{[]string{"soak", "--duration", "1m", "--sample-interval", "2m"}, "sample interval 2m0s"},
		{[]string{"soak", "--retention", "0s", "--partitions", "0"}, "partitions 0"},
		{[]string{"soak", "--record-bytes", "lots"}, "record-bytes"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(tc.args)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mamba-bench %s: %v, want an error mentioning %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// The node's binary is the flag's, else a mamba beside mamba-bench, else
// mamba on PATH; with none, the error says how to get one.
func TestNodeBinary(t *testing.T) {
	if got, err := nodeBinary("/opt/mamba"); err != nil || got != "/opt/mamba" {
		t.Errorf("nodeBinary(flag) = %q, %v; want the flag's value", got, err)
	}

	empty := t.TempDir()
	t.Setenv("PATH", empty)
	_, err := nodeBinary("")
	if err == nil || !strings.Contains(err.Error(), "--node-binary") || !strings.Contains(err.Error(), "cmd/mamba@latest") {
		t.Errorf("nodeBinary with no mamba anywhere: %v; want an error naming --node-binary and go install", err)
	}

	onPath := filepath.Join(empty, "mamba")
	if err := os.WriteFile(onPath, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := nodeBinary(""); err != nil || got != onPath {
		t.Errorf("nodeBinary with mamba on PATH = %q, %v; want %q", got, err, onPath)
	}
}

// Without a mamba binary, --local and compare stop before starting any
// server, and say why.
func TestLocalNeedsNodeBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(cliflag.EnvName(nodeBinaryFlag), "")
	for _, args := range [][]string{{"--local"}, {"compare"}} {
		cmd := newRootCmd()
		cmd.SetArgs(args)
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "no mamba binary") {
			t.Errorf("mamba-bench %s: %v, want the missing mamba binary reported", strings.Join(args, " "), err)
		}
	}
}
