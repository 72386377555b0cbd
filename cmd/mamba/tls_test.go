package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/certfile"
	"github.com/mambamq/mamba/internal/embedredis"
	"github.com/mambamq/mamba/internal/tooling/testcert"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/objectstore"
)

// startTLSNode runs a node in-process (embedded Redis, in-memory bucket)
// with the TLS settings o on a free loopback port, stopping it when the
// test ends, and returns its URL with the https scheme (even when o
// leaves TLS off).
func startTLSNode(t *testing.T, o tlsOptions) string {
	t.Helper()
	mr, err := embedredis.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Close)
	so := testServeOptions("tls-test")
	so.tls = o
	return "https://" + startNodeWith(t, so, mr.Client)
}

// testServeOptions are serve's defaults for an in-process test node: a
// free loopback port, fast flushes, no checkpoints.
func testServeOptions(nodeID string) serveOptions {
	so := defaultServeOptions()
	so.listen = "127.0.0.1:0"
	so.nodeID = nodeID
	so.flushInterval = 5 * time.Millisecond
	so.ckptInterval = 0
	so.shutdownTimeout = 5 * time.Second
	return so
}

// startNodeWith runs a node in-process with the options so, on rdb and an
// in-memory bucket, stopping it when the test ends, and returns its
// host:port.
func startNodeWith(t *testing.T, so serveOptions, rdb redis.UniversalClient) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveWith(ctx, so, log, rdb, objectstore.NewMemory(), func(addr string) { addrs <- addr })
	}()
	select {
	case addr := <-addrs:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node: %v", err)
			}
		})
		return addr
	case err := <-done:
		cancel()
		t.Fatalf("node did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("node did not listen within 10s")
	}
	return ""
}

// tlsFixture is a CA, the CA file, and a server pair it signed (serial 1)
// in a temporary directory.
type tlsFixture struct {
	dir    string
	ca     *testcert.CA
	caFile string
	server *testcert.Pair
}

func newTLSFixture(t *testing.T) tlsFixture {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "mamba test CA")
	return tlsFixture{dir: dir, ca: ca, caFile: ca.WriteCA(t, dir, "ca.pem"), server: ca.Server(t, 1).Write(t, dir, "server")}
}

func hostOf(t *testing.T, rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestServeTLS(t *testing.T) {
	fx := newTLSFixture(t)
	nodeURL := startTLSNode(t, tlsOptions{cert: fx.server.CertFile, key: fx.server.KeyFile})
	ctx := t.Context()

	// With the CA: a topic, a record produced, the record fetched.
	c, err := client.New(nodeURL, client.WithCAFile(fx.caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.CreateTopic(ctx, "secure", 1); err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Produce(ctx, client.Record{Topic: "secure", Key: []byte("k"), Value: []byte("over TLS")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := c.NewPartitionConsumer("secure", res.Partition, res.Offset)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pc.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || string(recs[0].Value) != "over TLS" || recs[0].Offset != res.Offset {
		t.Fatalf("fetched %+v, want the one record produced at %+v", recs, res)
	}

	// Without the CA: a certificate error, not retried.
	bare, err := client.New(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bare.ListTopics(ctx)
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
		t.Fatalf("ListTopics without the CA: %v, want a certificate verification error", err)
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok || client.IsRetryable(err) {
		t.Errorf("ListTopics without the CA: %v (retryable %v), want an unknown authority, not retryable", err, client.IsRetryable(err))
	}

	// Plain HTTP to the TLS port is refused, by the SDK and by hand.
	plainURL := "http://" + hostOf(t, nodeURL)
	plain, err := client.New(plainURL, client.WithRetries(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if topics, err := plain.ListTopics(ctx); err == nil {
		t.Fatalf("ListTopics over plain HTTP to the TLS port = %v, want an error", topics)
	} else if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.Status != http.StatusBadRequest || ae.Code != "" {
		t.Fatalf("ListTopics over plain HTTP to the TLS port: %v, want an *APIError 400 with no code", err)
	}
	resp, err := http.Get(plainURL + "/v1/topics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "secure") {
		t.Errorf("plain GET /v1/topics on the TLS port: %d %q, want 400 and no topic", resp.StatusCode, body)
	}

	// HTTP/2 is offered; TLS 1.1 is refused.
	pool := mustPool(t, fx.caFile)
	conn, err := tls.Dial("tcp", hostOf(t, nodeURL), &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("negotiated %q, want h2", p)
	}
	conn.Close()
	if conn, err := tls.Dial("tcp", hostOf(t, nodeURL), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded, want TLS 1.2 at least")
	}
}

// TestHTTPSToPlainNode: https:// to a node without TLS fails at once,
// not retried.
func TestHTTPSToPlainNode(t *testing.T) {
	nodeURL := startTLSNode(t, tlsOptions{}) // plain HTTP, despite the scheme returned
	c, err := client.New(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListTopics(t.Context())
	if err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") || client.IsRetryable(err) {
		t.Fatalf("ListTopics over https:// to a plain node: %v (retryable %v), want an HTTP answer to HTTPS, not retryable", err, client.IsRetryable(err))
	}
	plain, err := client.New(strings.Replace(nodeURL, "https://", "http://", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.ListTopics(t.Context()); err != nil {
		t.Fatalf("ListTopics over http:// to the plain node: %v", err)
	}
}

// servedSerial is the serial number of the certificate a new connection
// to host is shown.
func servedSerial(t *testing.T, host string, pool *x509.CertPool) (int64, error) {
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

func TestServeTLSReloadsCertificate(t *testing.T) {
	fx := newTLSFixture(t)
	nodeURL := startTLSNode(t, tlsOptions{cert: fx.server.CertFile, key: fx.server.KeyFile})
	host := hostOf(t, nodeURL)
	pool := mustPool(t, fx.caFile)
	if s, err := servedSerial(t, host, pool); err != nil || s != 1 {
		t.Fatalf("first certificate: serial %d, %v; want 1", s, err)
	}
	c, err := client.New(nodeURL, client.WithCAFile(fx.caFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(t.Context(), "renewed", 1); err != nil {
		t.Fatal(err)
	}

	fx.ca.Server(t, 2).Write(t, fx.dir, "server") // the same paths, a new pair
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := servedSerial(t, host, pool)
		if err == nil && s == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the files changed, a new connection is shown serial %d (%v), want 2", s, err)
		}
		time.Sleep(50 * time.Millisecond) // polling; the node looks at the files at most once a second
	}
	// The client carries on, on old connections or new.
	c.CloseIdleConnections()
	if topics, err := c.ListTopics(t.Context()); err != nil || len(topics) != 1 {
		t.Fatalf("ListTopics after the reload: %v, %v", topics, err)
	}
}

func TestServeTLSClientCertificates(t *testing.T) {
	fx := newTLSFixture(t)
	nodeURL := startTLSNode(t, tlsOptions{cert: fx.server.CertFile, key: fx.server.KeyFile, clientCA: fx.caFile})
	ctx := t.Context()
	good := fx.ca.Client(t, "app", 10).Write(t, fx.dir, "client")
	otherCA := testcert.NewCA(t, "another CA")
	stranger := otherCA.Client(t, "stranger", 11).Write(t, fx.dir, "stranger")

	pool := mustPool(t, fx.caFile)
	for _, tc := range []struct {
		name  string
		pair  *testcert.Pair
		alert string // the node's refusal; "" if it lets the client in
	}{
		{"no client certificate", nil, "tls: certificate required"},
		{"a certificate of another CA", stranger, "tls: unknown certificate authority"},
		{"a certificate of the client CA", good, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The node's answer to the handshake. Under TLS 1.3 the client
			// has finished its side before the node checks its certificate:
			// the refusal is an alert read after the handshake.
			cfg := &tls.Config{RootCAs: pool}
			opts := []client.Opt{client.WithCAFile(fx.caFile)}
			if tc.pair != nil {
				kp, err := tls.LoadX509KeyPair(tc.pair.CertFile, tc.pair.KeyFile)
				if err != nil {
					t.Fatal(err)
				}
				// Sent whatever CAs the node names, as the SDK does.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil }
				opts = append(opts, client.WithClientCertificate(tc.pair.CertFile, tc.pair.KeyFile))
			}
			conn, err := tls.Dial("tcp", hostOf(t, nodeURL), cfg)
			if err != nil {
				t.Fatal(err)
			}
			wait := 5 * time.Second // for the alert
			if tc.alert == "" {
				wait = 300 * time.Millisecond // for nothing: the node waits for a request
			}
			_ = conn.SetReadDeadline(time.Now().Add(wait))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
			if tc.alert == "" && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read after the handshake: %v, want the node waiting for a request", err)
			}
			if tc.alert != "" && (err == nil || !strings.Contains(err.Error(), tc.alert)) {
				t.Fatalf("read after the handshake: %v, want %q", err, tc.alert)
			}

			// The SDK sees the alert, not retried, or, when it was already
			// sending its request, a connection reset: the request fails
			// either way.
			c, err := client.New(nodeURL, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseIdleConnections()
			_, err = c.CreateTopic(ctx, "mtls-"+strings.ReplaceAll(tc.name, " ", "-"), 1)
			switch {
			case tc.alert == "" && err != nil:
				t.Fatalf("CreateTopic: %v", err)
			case tc.alert != "" && err == nil:
				t.Fatal("CreateTopic succeeded without an accepted client certificate")
			case tc.alert != "" && strings.Contains(err.Error(), tc.alert) && client.IsRetryable(err):
				t.Fatalf("CreateTopic: %v is retryable", err)
			}
		})
	}
}

func TestCLIOverTLS(t *testing.T) {
	fx := newTLSFixture(t)
	nodeURL := startTLSNode(t, tlsOptions{cert: fx.server.CertFile, key: fx.server.KeyFile, clientCA: fx.caFile})
	cl := fx.ca.Client(t, "cli", 20).Write(t, fx.dir, "cli")
	tlsArgs := []string{"--url", nodeURL, "--ca-file", fx.caFile, "--cert-file", cl.CertFile, "--key-file", cl.KeyFile}

	if _, errOut, code := runCLI(t, "", append([]string{"topic", "create", "cli-tls", "--partitions", "2"}, tlsArgs...)...); code != 0 {
		t.Fatalf("topic create: exit %d, %q", code, errOut)
	}
	out, errOut, code := runCLI(t, "", append([]string{"topic", "list"}, tlsArgs...)...)
	if code != 0 || !strings.Contains(out, "cli-tls") {
		t.Fatalf("topic list: exit %d, %q, %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "a\nb\n", append([]string{"produce", "cli-tls", "--partition", "1"}, tlsArgs...)...); code != 0 {
		t.Fatalf("produce: exit %d, %q", code, errOut)
	}
	out, errOut, code = runCLI(t, "", append([]string{"consume", "cli-tls", "-p", "1", "-o", "json"}, tlsArgs...)...)
	if recs := parseJSONLines(t, out); code != 0 || len(recs) != 2 || recs[1].Value != "b" {
		t.Fatalf("consume: exit %d, %q, %q", code, out, errOut)
	}

	// The same from the environment.
	t.Setenv("MAMBA_CA_FILE", fx.caFile)
	t.Setenv("MAMBA_CERT_FILE", cl.CertFile)
	t.Setenv("MAMBA_KEY_FILE", cl.KeyFile)
	if out, errOut, code := runCLI(t, "", "group", "list", "--url", nodeURL); code != 0 {
		t.Fatalf("group list with MAMBA_CA_FILE, MAMBA_CERT_FILE, MAMBA_KEY_FILE: exit %d, %q, %q", code, out, errOut)
	}
	t.Setenv("MAMBA_CERT_FILE", "")
	t.Setenv("MAMBA_KEY_FILE", "")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "list", "--url", nodeURL, "--ca-file", ""}, "certificate signed by unknown authority"},
		{[]string{"topic", "list", "--url", nodeURL, "--ca-file", fx.caFile}, "tls: certificate required"},
		{[]string{"topic", "list", "--url", nodeURL, "--cert-file", cl.CertFile}, "--cert-file and --key-file go together"},
		{[]string{"topic", "list", "--url", nodeURL, "--ca-file", fx.dir + "/missing.pem"}, "missing.pem"},
	} {
		_, errOut, code := runCLI(t, "", tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 1 and one line naming %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestTLSFlagErrors(t *testing.T) {
	fx := newTLSFixture(t)
	for _, cmd := range []string{"serve", "dev"} {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--tls-cert", fx.server.CertFile}, "--tls-cert and --tls-key go together"},
			{[]string{"--tls-key", fx.server.KeyFile}, "--tls-cert and --tls-key go together"},
			{[]string{"--tls-client-ca", fx.caFile}, "--tls-client-ca needs --tls-cert"},
		} {
			args := append([]string{cmd, "--dir", t.TempDir()}, tc.args...)
			if cmd == "serve" {
				args = append([]string{cmd, "--bucket", "mem://"}, tc.args...)
			}
			_, errOut, code := runCLI(t, "", args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("%q: exit %d, stderr %q; want 1 and %q", args, code, errOut, tc.want)
			}
		}
	}
}

// startDev runs mamba dev with args in-process until the test ends.
func startDev(t *testing.T, args ...string) {
	t.Helper()
	root := newRootCmd()
	root.SetArgs(append([]string{"dev"}, args...))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mamba dev: %v", err)
		}
	})
}

// TestDevTLS runs mamba dev with the TLS flags: the same HTTPS API.
func TestDevTLS(t *testing.T) {
	fx := newTLSFixture(t)
	nodeURL := fmt.Sprintf("https://127.0.0.1:%d", testserver.FreePort(t))
	startDev(t, "--dir", t.TempDir(), "--listen", hostOf(t, nodeURL), "--tls-cert", fx.server.CertFile, "--tls-key", fx.server.KeyFile)

	c, err := client.New(nodeURL, client.WithCAFile(fx.caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	// A read is retried while the server has never answered (for the
	// connect timeout): dev may still be starting.
	if _, err := c.ListTopics(t.Context()); err != nil {
		t.Fatalf("ListTopics on mamba dev over TLS: %v", err)
	}
	if _, err := c.CreateTopic(t.Context(), "dev-tls", 1); err != nil {
		t.Fatalf("CreateTopic on mamba dev over TLS: %v", err)
	}
	if s, err := servedSerial(t, hostOf(t, nodeURL), mustPool(t, fx.caFile)); err != nil || s != 1 {
		t.Fatalf("served serial %d, %v; want 1", s, err)
	}
}

func mustPool(t *testing.T, caFile string) *x509.CertPool {
	pool, err := certfile.CAPool(caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}
