package certfile

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/testcert"
)

// clock is a time the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestKeyPairReloads(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	first := ca.Server(t, 101).Write(t, dir, "server")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	clk := &clock{t: time.Unix(1000, 0)}
	k, err := loadKeyPair(first.CertFile, first.KeyFile, log, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 { return k.Certificate().Leaf.SerialNumber.Int64() }
	if got := serial(); got != 101 {
		t.Fatalf("serial %d, want 101", got)
	}

	// A new pair is not looked for before CheckInterval has passed.
	second := ca.Server(t, 102).Write(t, dir, "server")
	// Same size files written within the clock's resolution would look
	// unchanged; make the change visible whatever the file system.
	bumpMtime(t, second.CertFile, 2*time.Second)
	clk.t = clk.t.Add(CheckInterval / 2)
	if got := serial(); got != 101 {
		t.Fatalf("serial %d half an interval after the change, want 101 still", got)
	}
	clk.t = clk.t.Add(CheckInterval)
	if got := serial(); got != 102 {
		t.Fatalf("serial %d after the interval, want 102", got)
	}
	if !strings.Contains(logs.String(), "reloaded TLS certificate") {
		t.Errorf("no reload logged: %s", logs.String())
	}

	// A broken pair keeps the last good one, warned about once.
	logs.Reset()
	if err := os.WriteFile(second.CertFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clk.t = clk.t.Add(CheckInterval)
		if got := serial(); got != 102 {
			t.Fatalf("serial %d with a broken file, want 102 kept", got)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "keeping the previous one") {
		t.Errorf("%d warnings for one broken state, want 1: %s", n, logs.String())
	}

	// A missing key is a failure too; a good pair afterwards is taken.
	if err := os.Remove(second.KeyFile); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(CheckInterval)
	if got := serial(); got != 102 {
		t.Fatalf("serial %d with the key missing, want 102 kept", got)
	}
	third := ca.Server(t, 103).Write(t, dir, "server")
	bumpMtime(t, third.CertFile, 4*time.Second)
	clk.t = clk.t.Add(CheckInterval)
	if got := serial(); got != 103 {
		t.Fatalf("serial %d after the files were fixed, want 103", got)
	}
	if c, err := k.GetCertificate(nil); err != nil || c.Leaf.SerialNumber.Int64() != 103 {
		t.Errorf("GetCertificate = %v, %v", c, err)
	}
}

// bumpMtime moves path's modification time d into the future.
func bumpMtime(t *testing.T, path string, d time.Duration) {
	t.Helper()
	at := time.Now().Add(d)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyPairErrors(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	p := ca.Server(t, 1).Write(t, dir, "server")
	other := ca.Server(t, 2).Write(t, dir, "other")
	if _, err := LoadKeyPair(filepath.Join(dir, "missing.crt"), p.KeyFile, nil); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("missing cert: %v", err)
	}
	if _, err := LoadKeyPair(p.CertFile, other.KeyFile, nil); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestCAPool(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	pool, err := CAPool(caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := ca.Server(t, 5).Write(t, dir, "server")
	k, err := LoadKeyPair(p.CertFile, p.KeyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Certificate().Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("a certificate the CA signed does not verify against its pool: %v", err)
	}
	if _, err := CAPool(filepath.Join(dir, "nope.pem"), nil); err == nil || !strings.Contains(err.Error(), "nope.pem") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := CAPool(p.KeyFile, nil); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("file without a certificate: %v", err)
	}
}
