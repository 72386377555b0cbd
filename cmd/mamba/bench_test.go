//go:build unix

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// fakeBench writes an executable mamba-bench into dir that prints who it
// is, its arguments one a line and the node binary it was given, and
// exits with status 7.
func fakeBench(t *testing.T, dir, name string) {
	t.Helper()
	script := "#!/bin/sh\necho " + name + "\nfor a in \"$@\"; do echo \"$a\"; done\necho \"node=$" + nodeBinaryEnv + "\"\nexit 7\n"
	if err := os.WriteFile(filepath.Join(dir, benchBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runMambaPath runs bin with args and PATH set to path; it returns stdout,
// stderr and the exit code.
func runMambaPath(t *testing.T, bin, path string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s: %v", bin, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// copyFile copies an executable; os.Executable resolves symbolic links,
// so a link would not put mamba into dir.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// `mamba bench ARGS` runs mamba-bench with ARGS untouched (flags and
// --help included), its output and exit code passed through, and tells it
// which mamba its nodes run. mamba-bench next to mamba wins over PATH.
func TestBenchDispatch(t *testing.T) {
	mamba := testserver.MambaBinary(t)
	onPath := t.TempDir()
	fakeBench(t, onPath, "on-path")
	args := []string{"compare", "--runs", "1", "--systems", "minio-put,mamba", "a b", "--help"}

	stdout, stderr, code := runMambaPath(t, mamba, onPath, append([]string{"bench"}, args...)...)
	want := strings.Join(append(append([]string{"on-path"}, args...), "node="+mamba), "\n") + "\n"
	if stdout != want || code != 7 {
		t.Errorf("mamba bench with mamba-bench on PATH: exit %d, stdout\n%s\nstderr\n%s\nwant exit 7, stdout\n%s", code, stdout, stderr, want)
	}

	beside := t.TempDir()
	copyFile(t, mamba, filepath.Join(beside, "mamba"))
	fakeBench(t, beside, "beside")
	stdout, _, code = runMambaPath(t, filepath.Join(beside, "mamba"), onPath, "bench", "--local")
	want = "beside\n--local\nnode=" + filepath.Join(beside, "mamba") + "\n"
	if stdout != want || code != 7 {
		t.Errorf("mamba bench with mamba-bench beside mamba: exit %d, stdout\n%s\nwant exit 7, stdout\n%s", code, stdout, want)
	}
}

// Without mamba-bench, `mamba bench` fails and says how to get it.
func TestBenchNotInstalled(t *testing.T) {
	stdout, stderr, code := runMambaPath(t, testserver.MambaBinary(t), t.TempDir(), "bench", "--local")
	if code == 0 || stdout != "" {
		t.Errorf("mamba bench without mamba-bench: exit %d, stdout %q; want a failure", code, stdout)
	}
	for _, want := range []string{"mamba-bench is not installed", "go install github.com/mambamq/mamba/cmd/mamba-bench@latest", "go run ./cmd/mamba-bench"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("mamba bench without mamba-bench: stderr %q does not say %q", stderr, want)
		}
	}
}
