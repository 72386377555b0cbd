package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/servers"
	"github.com/mambamq/mamba/internal/tooling/testcert"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// syncBuffer is a process's output, read while the process writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServeProcess runs the mamba binary's serve with args and the
// environment env (SSL_CERT_FILE of the caller left out), until the test
// ends, and returns its URL and its stderr once it answers /healthz.
func startServeProcess(t *testing.T, env []string, args ...string) (string, *syncBuffer) {
	t.Helper()
	bin := testserver.MambaBinary(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", testserver.FreePort(t))
	cmd := exec.Command(bin, append([]string{"serve", "--listen", strings.TrimPrefix(url, "http://"), "--checkpoint-interval", "0", "--log-level", "warn"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSL_CERT_FILE=") && !strings.HasPrefix(kv, "MAMBA_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("mamba serve %q stderr:\n%s", args, stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url, stderr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mamba serve %q did not answer /healthz in 15s: %v", args, err)
		}
		time.Sleep(50 * time.Millisecond) // polling
	}
}

// TestServeRedisTLS: --redis rediss:// reaches a Redis that serves TLS,
// its certificate checked against the roots, which SSL_CERT_FILE replaces.
func TestServeRedisTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "redis test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	pair := ca.Server(t, 7).Write(t, dir, "redis")
	r := testserver.StartRedis(t, testserver.RedisOptions{TLS: &servers.RedisTLS{CertFile: pair.CertFile, KeyFile: pair.KeyFile, CAFile: caFile}})
	redisURL := "rediss://" + r.TLSAddr + "/0"

	// Trusting the CA: ready, and records go through Redis's scripts.
	url, _ := startServeProcess(t, []string{"SSL_CERT_FILE=" + caFile}, "--bucket", "mem://", "--redis", redisURL, "--node-id", "rediss")
	if code, body := getBody(t, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with Redis over TLS: %d %s", code, body)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.CreateTopic(t.Context(), "over-rediss", 1); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Produce(t.Context(), client.Record{Topic: "over-rediss", Value: []byte("v")})
	if err != nil || res.Offset != 0 {
		t.Fatalf("Produce: %+v, %v", res, err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Not trusting it: not ready, and the log says why.
	url, stderr := startServeProcess(t, nil, "--bucket", "mem://", "--redis", redisURL, "--node-id", "untrusting")
	if code, body := getBody(t, url+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(stderr.String(), "x509: certificate signed by unknown authority") {
		t.Fatalf("/readyz with Redis's CA untrusted: %d %s; log %s", code, body, stderr.String())
	} else {
		t.Logf("/readyz with Redis's CA untrusted: %d %s", code, body)
	}
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
