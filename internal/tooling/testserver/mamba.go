package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// Mamba is a mamba node process on loopback.
type Mamba = servers.Mamba

// MambaOptions changes how StartMambaWith runs a node. Unlike in
// servers.StartMamba, an empty Binary builds ./cmd/mamba (once per test
// binary), as StartMamba does.
type MambaOptions = servers.MambaOptions

// StartMamba builds the mamba binary (once) and starts an ingest node on
// the given MinIO bucket and Redis, with extra flags, killing it when the
// test ends. It returns once /readyz answers 200.
func StartMamba(t testing.TB, m *MinIO, r *Redis, bucket, nodeID string, extra ...string) *Mamba {
	t.Helper()
	return StartMambaWith(t, m, r, bucket, nodeID, MambaOptions{}, extra...)
}

// StartMambaWith starts an ingest node like StartMamba, with the binary,
// bucket endpoint and environment of opts.
func StartMambaWith(t testing.TB, m *MinIO, r *Redis, bucket, nodeID string, opts MambaOptions, extra ...string) *Mamba {
	t.Helper()
	if opts.Binary == "" {
		opts.Binary = MambaBinary(t)
	}
	n, err := servers.StartMamba(t.TempDir(), m.MinIO, r, bucket, nodeID, opts, extra...)
	if err != nil {
		t.Fatal(err)
	}
	killAtEnd(t, n.Process)
	return n
}

// StartMambaEndpoint starts an ingest node like StartMamba whose bucket
// URL names endpoint instead of MinIO's own address.
func StartMambaEndpoint(t testing.TB, m *MinIO, r *Redis, bucket, nodeID, endpoint string, extra ...string) *Mamba {
	t.Helper()
	return StartMambaWith(t, m, r, bucket, nodeID, MambaOptions{Endpoint: endpoint}, extra...)
}

// StartMambaDev starts `mamba dev` on the data directory dir with extra
// flags, and kills it when the test ends. Kill and Start restart it on the
// same directory and port, as a user restarting it would.
func StartMambaDev(t testing.TB, dir string, extra ...string) *Mamba {
	t.Helper()
	n, err := servers.StartMambaDev(t.TempDir(), MambaBinary(t), dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	killAtEnd(t, n.Process)
	return n
}

// MambaBinary returns the path of the mamba binary built from this module
// (built once per test binary), for tests that run its commands.
func MambaBinary(t testing.TB) string {
	t.Helper()
	bin, err := buildMamba()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildMamba compiles cmd/mamba once per test binary, into a directory that
// outlives any one test.
var buildMamba = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mamba-bin")
	if err != nil {
		return "", err
	}
	return goBuildMamba(dir)
})

// BuildMamba compiles cmd/mamba with the given build tags into a
// temporary directory of the test and returns the executable's path.
func BuildMamba(t testing.TB, tags ...string) string {
	t.Helper()
	bin, err := goBuildMamba(t.TempDir(), tags...)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// goBuildMamba builds this module's cmd/mamba with the build tags into
// dir/mamba.
func goBuildMamba(dir string, tags ...string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	bin := filepath.Join(dir, "mamba")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, "./cmd/mamba")...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}
