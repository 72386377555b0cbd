package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// TestTokenGenerate checks mamba auth token generate: a valid token on
// stdout; with --file a new owner-only file, kept when run again; a file
// that holds something else refused without printing it.
func TestTokenGenerate(t *testing.T) {
	out, errOut, code := runCLI(t, "", "auth", "token", "generate")
	if _, _, err := metadata.ParseToken(strings.TrimSpace(out)); code != 0 || err != nil {
		t.Fatalf("generate: exit %d, %q, %q: %v", code, out, errOut, err)
	}
	out2, _, _ := runCLI(t, "", "auth", "token", "generate")
	if out2 == out {
		t.Error("two generated tokens are equal")
	}
	file := filepath.Join(t.TempDir(), "bootstrap-token")
	if out, errOut, code := runCLI(t, "", "auth", "token", "generate", "--file", file); code != 0 || out != "" || !strings.Contains(errOut, "wrote a new token") {
		t.Fatalf("generate --file: exit %d, %q, %q", code, out, errOut)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v; want mode 0600", st, err)
	}
	first, err := readTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "generate", "--file", file); code != 0 || !strings.Contains(errOut, "kept it") {
		t.Fatalf("generate --file again: exit %d, %q", code, errOut)
	}
	if again, _ := readTokenFile(file); again != first {
		t.Error("generate --file replaced an existing token")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("CHANGE-ME-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "generate", "--file", bad); code != 1 || !strings.Contains(errOut, "does not hold a token") || strings.Contains(errOut, "CHANGE-ME") {
		t.Errorf("generate --file over another file: exit %d, %q; want a refusal that does not show the content", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "generate", "--redis", "redis://127.0.0.1:1/0"); code != 1 || !strings.Contains(errOut, "--redis does not apply") {
		t.Errorf("generate --redis: exit %d, %q", code, errOut)
	}
}

// TestBootstrapTokenFile runs two nodes with --auth and one
// --bootstrap-token-file on a real Redis: the first creates the token as
// an admin token, the second finds it there (one token, not two), and
// the token works at once. A node given a file without --auth, or a file
// without a token, refuses to start.
func TestBootstrapTokenFile(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	file := filepath.Join(t.TempDir(), "token")
	if _, errOut, code := runCLI(t, "", "auth", "token", "generate", "--file", file); code != 0 {
		t.Fatalf("generate: %q", errOut)
	}
	raw, err := readTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, id := range []string{"boot-a", "boot-b"} {
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { rdb.Close() })
		so := testServeOptions(id)
		so.auth, so.bootstrapTokenFile = true, file
		urls = append(urls, "http://"+startNodeWith(t, so, rdb))
	}
	for _, u := range urls {
		c, err := client.New(u, client.WithToken(raw))
		if err != nil {
			t.Fatal(err)
		}
		toks, err := c.ListTokens(t.Context())
		if err != nil || len(toks) != 1 || toks[0].Name != metadata.BootstrapTokenName || len(toks[0].Scopes) != 1 || toks[0].Scopes[0] != "admin" {
			t.Errorf("ListTokens on %s = %+v, %v; want the one bootstrap admin token", u, toks, err)
		}
	}

	so := testServeOptions("boot-c")
	so.bootstrapTokenFile = file
	if _, err := bootstrapToken(so); err == nil || !strings.Contains(err.Error(), "needs --auth") {
		t.Errorf("file without --auth: %v", err)
	}
	so.auth = true
	for name, content := range map[string]string{"garbage": "CHANGE-ME\n", "empty": "", "huge": strings.Repeat("x", 5000)} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		so.bootstrapTokenFile = p
		_, err := bootstrapToken(so)
		if err == nil || (content != "" && strings.Contains(err.Error(), content[:5])) {
			t.Errorf("%s file: %v; want a refusal that does not show the content", name, err)
		}
	}
	so.bootstrapTokenFile = filepath.Join(t.TempDir(), "missing")
	if _, err := bootstrapToken(so); err == nil {
		t.Error("a missing file was accepted")
	}

	// Revoked, the token is not created again by a node that starts with
	// it: the node starts, and the token stays refused.
	c, err := client.New(urls[0], client.WithToken(raw))
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := c.CreateToken(t.Context(), "second admin", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := metadata.ParseToken(raw)
	if err := c.RevokeToken(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	so = testServeOptions("boot-d")
	so.auth, so.bootstrapTokenFile = true, file
	u := "http://" + startNodeWith(t, so, rdb)
	admin, err := client.New(u, client.WithToken(other))
	if err != nil {
		t.Fatal(err)
	}
	toks, err := admin.ListTokens(t.Context())
	if err != nil || len(toks) != 1 || toks[0].Name != "second admin" {
		t.Errorf("tokens after a node started with a revoked bootstrap token = %+v, %v; want only the second admin", toks, err)
	}
}
