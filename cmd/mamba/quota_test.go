package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/wire"
)

// TestQuotaCLI creates a token with its own quotas, lists and changes
// them, and checks that the CLI and the SDK report a token over its quota
// as one clear error, at once when the Retry-After is past what they
// would wait.
func TestQuotaCLI(t *testing.T) {
	urls, redisURL, _ := authNodes(t, 1)
	url := urls[0]
	admin, errOut, code := runCLI(t, "", "auth", "token", "create", "--redis", redisURL, "--name", "root", "--scope", "admin")
	admin = strings.TrimSpace(admin)
	if code != 0 {
		t.Fatalf("bootstrap: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "topic", "create", "orders", "--partitions", "1", "--url", url, "--token", admin); code != 0 {
		t.Fatalf("topic create: exit %d, %q", code, errOut)
	}
	out, errOut, code := runCLI(t, "", "auth", "token", "create", "--url", url, "--token", admin, "--name", "app",
		"--scope", "produce:orders", "--scope", "consume:orders", "--quota-produce-bytes", "1", "--quota-long-polls", "0")
	app := strings.TrimSpace(out)
	if code != 0 || !strings.Contains(errOut, "produce_bytes=1B/s,long_polls=unlimited") {
		t.Fatalf("create with quotas: exit %d, %q, %q", code, out, errOut)
	}
	for _, bad := range [][]string{{"--quota-fetch-bytes", "lots"}, {"--quota-long-polls", "-1"}, {"--quota-long-polls", "default"}} {
		args := append([]string{"auth", "token", "create", "--url", url, "--token", admin, "--name", "x", "--scope", "admin"}, bad...)
		if _, errOut, code := runCLI(t, "", args...); code != 1 || !strings.Contains(errOut, bad[0]) {
			t.Errorf("create %v: exit %d, %q; want an error naming the flag", bad, code, errOut)
		}
	}

	// 500 bytes at 1 byte/s: the next produce would wait minutes, past
	// the producer's delivery timeout, so it fails at once.
	if _, errOut, code := runCLI(t, strings.Repeat("x", 500)+"\n", "produce", "orders", "--url", url, "--token", app); code != 0 {
		t.Fatalf("first produce: exit %d, %q", code, errOut)
	}
	start := time.Now()
	_, errOut, code = runCLI(t, "y\n", "produce", "orders", "--url", url, "--token", app)
	// produce reports each failed line, then a count.
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || len(lines) != 2 || !strings.Contains(lines[0], "quota_exceeded") || !strings.Contains(lines[0], "produce_bytes") {
		t.Fatalf("produce over the quota: exit %d, %q; want the line's error naming quota_exceeded and produce_bytes", code, errOut)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("produce over the quota took %v to fail", d)
	}

	// The SDK: a typed error with the quota's name and Retry-After.
	c, err := client.New(url, client.WithToken(app))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Produce(t.Context(), client.Record{Topic: "orders", Value: []byte("z")})
	ae, ok := errors.AsType[*client.APIError](err)
	if !errors.Is(err, client.ErrQuotaExceeded) || !ok || ae.Quota != wire.QuotaProduceBytes || ae.RetryAfter < time.Minute {
		t.Fatalf("SDK produce over the quota: %v (%+v)", err, ae)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Logf("close: %v", err)
	}

	// Lifted with update; list shows what the token has.
	appID := strings.Split(app, "_")[1]
	out, errOut, code = runCLI(t, "", "auth", "token", "update", appID, "--url", url, "--token", admin, "--quota-produce-bytes", "default", "--quota-fetch-bytes", "64MiB")
	if code != 0 || !strings.Contains(out, "fetch_bytes=64MiB/s,long_polls=unlimited") || strings.Contains(out, "produce_bytes") {
		t.Fatalf("update: exit %d, %q, %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "update", appID, "--url", url, "--token", admin); code != 1 || !strings.Contains(errOut, "--quota") {
		t.Errorf("update without a quota: exit %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "y\n", "produce", "orders", "--url", url, "--token", app); code != 0 {
		t.Fatalf("produce after the update: exit %d, %q", code, errOut)
	}
	out, _, code = runCLI(t, "", "auth", "token", "list", "--redis", redisURL)
	if code != 0 || !strings.Contains(out, "QUOTAS") || !strings.Contains(out, "defaults") || !strings.Contains(out, "fetch_bytes=64MiB/s") {
		t.Errorf("list: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, "", "auth", "token", "list", "--url", url, "--token", admin, "-o", "json")
	if code != 0 || !strings.Contains(out, `"fetch_bytes": 67108864`) {
		t.Errorf("list -o json: exit %d, %q", code, out)
	}

	// A consumer over its fetch quota: one line, and at once when the
	// Retry-After is past the client's retry timeout.
	if _, errOut, code := runCLI(t, "", "auth", "token", "update", appID, "--url", url, "--token", admin, "--quota-fetch-bytes", "1"); code != 0 {
		t.Fatalf("update: exit %d, %q", code, errOut)
	}
	if out, errOut, code := runCLI(t, "", "consume", "orders", "-p", "0", "--url", url, "--token", app); code != 0 || !strings.Contains(out, "xxx") {
		t.Fatalf("first consume: exit %d, %q, %q", code, out, errOut)
	}
	start = time.Now()
	_, errOut, code = runCLI(t, "", "consume", "orders", "-p", "0", "--url", url, "--token", app)
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "quota_exceeded") || !strings.Contains(errOut, "fetch_bytes") {
		t.Fatalf("consume over the quota: exit %d, %q; want one line naming quota_exceeded and fetch_bytes", code, errOut)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("consume over the quota took %v to fail", d)
	}
}
