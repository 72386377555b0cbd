package testserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// buildMamba compiles cmd/mamba once per test binary.
var buildMamba = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "mamba-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mamba")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mamba")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mamba: %v\n%s", err, out)
	}
	return bin, nil
})

// Mamba is a `mamba serve` process on loopback.
type Mamba struct {
	*Process
	// URL is the node's HTTP API, for example http://127.0.0.1:41234.
	URL string
}

// StartMamba builds the mamba binary (once) and starts an ingest node on
// the given MinIO bucket and Redis, with extra flags, stopping it when the
// test ends. It returns once /readyz answers 200.
func StartMamba(t testing.TB, m *MinIO, r *Redis, bucket, nodeID string, extra ...string) *Mamba {
	t.Helper()
	bin, err := buildMamba()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	n := &Mamba{}
	n.Process = start(t, func(port int) *Process {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		n.URL = "http://" + addr
		return &Process{
			Name: "mamba " + nodeID,
			path: bin,
			args: append([]string{"serve", "--listen", addr, "--node-id", nodeID}, extra...),
			env: []string{
				"MAMBA_BUCKET=s3://" + bucket + "?endpoint=" + m.Endpoint,
				"MAMBA_REDIS=redis://" + r.Addr + "/0",
				"AWS_ACCESS_KEY_ID=" + m.AccessKey,
				"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
				"AWS_REGION=us-east-1",
			},
			logPath: filepath.Join(base, "mamba.log"),
			ready:   func(ctx context.Context) error { return httpOK(ctx, n.URL+"/readyz") },
		}
	})
	return n
}

// Signal sends sig to the running process.
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit on its own and returns its exit
// code.
func (p *Process) Wait() int {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return -1
	}
	<-done
	p.mu.Lock()
	p.cmd = nil
	p.mu.Unlock()
	return cmd.ProcessState.ExitCode()
}
