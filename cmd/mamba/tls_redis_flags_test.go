package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mambamq/mamba/internal/tooling/servers"
	"github.com/mambamq/mamba/internal/tooling/testcert"
	"github.com/mambamq/mamba/internal/tooling/testserver"
)

// TestRedisTLSFlags: against a redis-server that requires client
// certificates (tls-auth-clients yes), --redis-ca-file trusts its private
// CA without SSL_CERT_FILE and --redis-cert-file/--redis-key-file present
// the client's certificate: a serve process is ready and takes records,
// and mamba auth token create --redis works; without the client
// certificate Redis refuses the connection; the flags without rediss://
// are refused before anything starts.
func TestRedisTLSFlags(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "redis test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	srv := ca.Server(t, 7).Write(t, dir, "redis")
	cli := ca.Client(t, "mamba-node", 8).Write(t, dir, "client")
	r := testserver.StartRedis(t, testserver.RedisOptions{TLS: &servers.RedisTLS{CertFile: srv.CertFile, KeyFile: srv.KeyFile, CAFile: caFile, RequireClientCert: true}})
	redisURL := "rediss://" + r.TLSAddr + "/0"
	tlsArgs := []string{"--redis-ca-file", caFile, "--redis-cert-file", cli.CertFile, "--redis-key-file", cli.KeyFile}

	url, _ := startServeProcess(t, nil, append([]string{"--bucket", "mem://", "--redis", redisURL, "--node-id", "rediss-flags"}, tlsArgs...)...)
	if code, body := getBody(t, url+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with --redis-ca-file and a client certificate: %d %s", code, body)
	}
	if _, errOut, code := runCLI(t, "", "topic", "create", "over-mtls", "--partitions", "1", "--url", url); code != 0 {
		t.Fatalf("topic create: %q", errOut)
	}
	if _, errOut, code := runCLI(t, "v\n", "produce", "over-mtls", "--url", url); code != 0 {
		t.Fatalf("produce through a node on Redis over mutual TLS: %q", errOut)
	}

	create := []string{"auth", "token", "create", "--redis", redisURL, "--name", "tls", "--scope", "admin"}
	if out, errOut, code := runCLI(t, "", append(create, tlsArgs...)...); code != 0 || !strings.HasPrefix(out, "mmb_") {
		t.Fatalf("auth token create over mutual TLS: exit %d, %q, %q", code, out, errOut)
	}
	// Trusting the CA but without a client certificate: Redis refuses.
	if _, errOut, code := runCLI(t, "", append(create, "--redis-ca-file", caFile)...); code != 1 {
		t.Errorf("auth token create without a client certificate: exit %d, %q; want 1", code, errOut)
	}
	// Without the CA: the certificate is not trusted.
	if _, errOut, code := runCLI(t, "", append(create, "--redis-cert-file", cli.CertFile, "--redis-key-file", cli.KeyFile)...); code != 1 || !strings.Contains(errOut, "certificate") {
		t.Errorf("auth token create without --redis-ca-file: exit %d, %q; want 1 naming the certificate", code, errOut)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"auth", "token", "list", "--redis", "redis://" + r.Addr + "/0", "--redis-ca-file", caFile}, "need a rediss://"},
		{[]string{"auth", "token", "list", "--redis", redisURL, "--redis-cert-file", cli.CertFile}, "go together"},
		{[]string{"auth", "token", "list", "--redis", redisURL, "--redis-ca-file", srv.KeyFile}, "--redis-ca-file"},
		{[]string{"restore", "--bucket", "mem://", "--redis", "redis://" + r.Addr + "/0", "--redis-ca-file", caFile}, "need a rediss://"},
	} {
		if _, errOut, code := runCLI(t, "", tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want an error saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestFailoverServeLineKeepsRedisTLS: the mamba serve line dr failover
// prints for region B keeps the Redis TLS files and asks for auth with a
// bootstrap token (checkpoints hold no tokens).
func TestFailoverServeLineKeepsRedisTLS(t *testing.T) {
	line := serveCommandLine(restoreOptions{bucket: "s3://b", redisURL: "rediss://r:6380/0", keyPrefix: "mamba",
		dedupWindow: 10 * time.Minute, redisTLS: redisTLSOptions{caFile: "/etc/mamba/redis ca.pem", certFile: "/etc/mamba/c.pem", keyFile: "/etc/mamba/c.key"}})
	for _, want := range []string{"--redis rediss://r:6380/0", "--redis-ca-file '/etc/mamba/redis ca.pem'", "--redis-cert-file /etc/mamba/c.pem",
		"--redis-key-file /etc/mamba/c.key", "--auth --bootstrap-token-file <bootstrap-token-file>"} {
		if !strings.Contains(line, want) {
			t.Errorf("serve line %q lacks %q", line, want)
		}
	}
}
