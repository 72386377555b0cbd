// Package testserver starts real servers (MinIO, Redis, NATS JetStream and
// mamba nodes) for integration tests. It is a thin layer over
// internal/tooling/servers, which does the launching: each server gets a
// temporary directory of the test for its data and log, and is killed
// when the test ends, its log printed if the test failed. Binaries are
// found on PATH or in $(go env GOPATH)/bin, where
// deploy/local/install-deps.sh puts them.
//
// A missing binary skips the test with a clear message on a developer
// machine, and fails it when CI=true: CI must never pass by skipping. A
// binary that is present but cannot start always fails the test.
//
// The server types are internal/tooling/servers' own (aliases), except MinIO,
// which adds test helpers.
package testserver

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/mambamq/mamba/internal/tooling/servers"
)

// Process is a server process that a test can stop, kill and start again
// with the same arguments, port and data directory.
type Process = servers.Process

// InCI reports whether the tests run in CI, where missing servers are
// failures rather than skips.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Binary returns the path of the named program, looking on PATH and then in
// the Go bin directory.
func Binary(name string) (string, error) { return servers.Binary(name) }

// RequireBinary returns the program's path, or skips the test (fails it in
// CI) when the program is not installed.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := servers.Binary(name)
	if err != nil {
		notStarted(t, err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := servers.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// notStarted ends the test for err, which kept a server from starting: a
// skip when its program is not installed outside CI, a failure otherwise.
func notStarted(t testing.TB, err error) {
	t.Helper()
	switch {
	case !errors.Is(err, servers.ErrNotInstalled):
		t.Fatal(err)
	case InCI():
		t.Fatalf("CI=true and %v", err)
	default:
		t.Skipf("skipping: %v", err)
	}
}

// killAtEnd kills p when the test ends and prints its log if the test
// failed. The data directory is discarded with the test, so there is
// nothing to shut down gracefully for.
func killAtEnd(t testing.TB, p *Process) {
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", p.Name, p.LogPath(), p.LogTail())
		}
	})
}
