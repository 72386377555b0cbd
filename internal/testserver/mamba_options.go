package testserver

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// MambaOptions changes how StartMambaWith runs a node.
type MambaOptions struct {
	// Binary is the mamba executable to run; empty builds ./cmd/mamba
	// (once per test binary), as StartMamba does.
	Binary string
	// Endpoint replaces the MinIO endpoint in the node's bucket URL, for
	// example with a fault-injecting proxy in front of MinIO. Empty means
	// MinIO's own endpoint.
	Endpoint string
}

// StartMambaWith starts an ingest node like StartMamba, with the binary
// and bucket endpoint of opts.
func StartMambaWith(t testing.TB, m *MinIO, r *Redis, bucket, nodeID string, opts MambaOptions, extra ...string) *Mamba {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = buildMamba(); err != nil {
			t.Fatal(err)
		}
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = m.Endpoint
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
				"MAMBA_BUCKET=s3://" + bucket + "?endpoint=" + endpoint,
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

// StartMambaEndpoint starts an ingest node like StartMamba whose bucket
// URL names endpoint instead of MinIO's own address.
func StartMambaEndpoint(t testing.TB, m *MinIO, r *Redis, bucket, nodeID, endpoint string, extra ...string) *Mamba {
	t.Helper()
	return StartMambaWith(t, m, r, bucket, nodeID, MambaOptions{Endpoint: endpoint}, extra...)
}

// BuildMamba compiles cmd/mamba with the given build tags into a
// temporary directory of the test and returns the executable's path.
func BuildMamba(t testing.TB, tags ...string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(t.TempDir(), "mamba")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./cmd/mamba")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatal(fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out))
	}
	return bin
}
