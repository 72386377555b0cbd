package testserver

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// StartMambaDev starts `mamba dev` on the data directory dir with extra
// flags, and stops it when the test ends. Kill and Start restart it on the
// same directory and port, as a user restarting it would.
func StartMambaDev(t testing.TB, dir string, extra ...string) *Mamba {
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
			Name:    "mamba dev",
			path:    bin,
			args:    append([]string{"dev", "--dir", dir, "--listen", addr}, extra...),
			logPath: filepath.Join(base, "mamba-dev.log"),
			ready:   func(ctx context.Context) error { return httpOK(ctx, n.URL+"/readyz") },
		}
	})
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
