package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/client"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// authNodes runs n nodes with --auth on one real redis-server and
// returns their URLs, the Redis URL and a client of that Redis.
func authNodes(t *testing.T, n int) ([]string, string, *redis.Client) {
	t.Helper()
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	var urls []string
	for i := range n {
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
		t.Cleanup(func() { rdb.Close() })
		so := testServeOptions("auth-" + string(rune('a'+i)))
		so.auth = true
		urls = append(urls, "http://"+startNodeWith(t, so, rdb))
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return urls, "redis://" + r.Addr + "/0", rdb
}

// TestAuthCLI bootstraps an admin token in Redis, then creates, lists and
// revokes tokens with the CLI against a node with --auth, and checks that
// each command that talks to a node sends --token or MAMBA_TOKEN.
func TestAuthCLI(t *testing.T) {
	urls, redisURL, rdb := authNodes(t, 1)
	url := urls[0]

	if _, errOut, code := runCLI(t, "", "topic", "list", "--url", url); code != 1 || !strings.Contains(errOut, "unauthenticated") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("topic list without a token: exit %d, %q; want 1 and one line saying unauthenticated", code, errOut)
	}
	admin, errOut, code := runCLI(t, "", "auth", "token", "create", "--redis", redisURL, "--name", "root", "--scope", "admin")
	admin = strings.TrimSpace(admin)
	if code != 0 || !strings.HasPrefix(admin, metadata.TokenPrefix) || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("bootstrap: exit %d, %q, %q", code, admin, errOut)
	}
	// The token from the environment.
	t.Setenv("MAMBA_TOKEN", admin)
	if _, errOut, code := runCLI(t, "", "topic", "create", "orders", "--partitions", "2", "--url", url); code != 0 {
		t.Fatalf("topic create with MAMBA_TOKEN: exit %d, %q", code, errOut)
	}
	out, errOut, code := runCLI(t, "", "auth", "token", "create", "--url", url, "--name", "orders-app", "--scope", "produce:orders", "--scope", "consume:ord*")
	app := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(app, metadata.TokenPrefix) {
		t.Fatalf("create through the API: exit %d, %q, %q", code, out, errOut)
	}
	appID, appSecret, err := metadata.ParseToken(app)
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "create", "--url", url, "--name", "x", "--scope", "read:orders"); code != 1 || !strings.Contains(errOut, "read:orders") {
		t.Errorf("create with a bad scope: exit %d, %q", code, errOut)
	}
	t.Setenv("MAMBA_TOKEN", "")

	// The app token by flag: produce and consume work, topic create is
	// forbidden and says what it needs.
	if _, errOut, code := runCLI(t, "a\nb\n", "produce", "orders", "--partition", "1", "--url", url, "--token", app); code != 0 {
		t.Fatalf("produce with the app token: exit %d, %q", code, errOut)
	}
	out, errOut, code = runCLI(t, "", "consume", "orders", "-p", "1", "-o", "json", "--url", url, "--token", app)
	if recs := parseJSONLines(t, out); code != 0 || len(recs) != 2 || recs[1].Value != "b" {
		t.Fatalf("consume with the app token: exit %d, %q, %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "", "topic", "create", "other", "--partitions", "1", "--url", url, "--token", app); code != 1 || !strings.Contains(errOut, "forbidden") || !strings.Contains(errOut, "admin") {
		t.Errorf("topic create with the app token: exit %d, %q; want forbidden naming admin", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "group", "describe", "g", "--url", url, "--token", app); code != 1 || !strings.Contains(errOut, "group:g") {
		t.Errorf("group describe with the app token: exit %d, %q; want forbidden naming group:g", code, errOut)
	}

	out, errOut, code = runCLI(t, "", "auth", "token", "list", "--url", url, "--token", admin)
	if code != 0 || !strings.Contains(out, appID) || !strings.Contains(out, "orders-app") || !strings.Contains(out, "produce:orders consume:ord*") || strings.Contains(out, appSecret) {
		t.Fatalf("list: exit %d, %q, %q", code, out, errOut)
	}
	// Neither secret is anywhere in Redis.
	_, adminSecret, _ := metadata.ParseToken(admin)
	keys, err := rdb.Keys(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		dump, err := rdb.Dump(t.Context(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k+dump, appSecret) || strings.Contains(k+dump, adminSecret) {
			t.Errorf("Redis key %s holds a token secret", k)
		}
	}

	if out, errOut, code := runCLI(t, "", "auth", "token", "revoke", appID, "--url", url, "--token", admin); code != 0 || !strings.Contains(out, appID) {
		t.Fatalf("revoke: exit %d, %q, %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "c\n", "produce", "orders", "--url", url, "--token", app); code != 1 || !strings.Contains(errOut, "unauthenticated") {
		t.Errorf("produce with the revoked token: exit %d, %q; want unauthenticated", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "auth", "token", "revoke", appID, "--redis", redisURL); code != 1 || !strings.Contains(errOut, "token not found") {
		t.Errorf("second revoke through Redis: exit %d, %q", code, errOut)
	}
	out, _, code = runCLI(t, "", "auth", "token", "list", "--redis", redisURL, "-o", "json")
	if code != 0 || strings.Contains(out, appID) || !strings.Contains(out, `"root"`) || strings.Contains(out, adminSecret) {
		t.Errorf("list through Redis after revoke: exit %d, %q", code, out)
	}
}

// TestAuthSDK checks client.WithToken end to end against two nodes: the
// token goes with every request (admin calls, a producer, a consumer), a
// missing or wrong-scope token gets ErrUnauthenticated or ErrForbidden,
// and a token revoked on one node is refused by the other within the
// token cache's 5 seconds.
func TestAuthSDK(t *testing.T) {
	urls, redisURL, _ := authNodes(t, 2)
	admin, _, code := runCLI(t, "", "auth", "token", "create", "--redis", redisURL, "--name", "root", "--scope", "admin")
	if code != 0 {
		t.Fatal("bootstrap failed")
	}
	ctx := t.Context()
	newClient := func(url string, opts ...client.Opt) *client.Client {
		c, err := client.New(url, append(opts, client.WithRetries(1, time.Millisecond, time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ac := newClient(urls[0], client.WithToken(strings.TrimSpace(admin)))
	if _, err := ac.CreateTopic(ctx, "events", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(urls[0]).ListTopics(ctx); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("ListTopics without a token = %v, want ErrUnauthenticated", err)
	}
	if _, err := client.New(urls[0], client.WithToken("a b")); err == nil {
		t.Error("WithToken accepts a token with a space")
	}
	raw, tok, err := ac.CreateToken(ctx, "events-app", []string{"produce:events", "consume:events"})
	if err != nil || tok.Name != "events-app" || len(tok.Scopes) != 2 || tok.Created.IsZero() {
		t.Fatalf("CreateToken = %q, %+v, %v", raw, tok, err)
	}
	app := newClient(urls[1], client.WithToken(raw))
	if _, err := app.CreateTopic(ctx, "other", 1); !errors.Is(err, client.ErrForbidden) || strings.Contains(err.Error(), raw) {
		t.Errorf("CreateTopic with the app token = %v, want ErrForbidden without the token", err)
	}
	p, err := app.NewProducer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Produce(ctx, client.Record{Topic: "events", Value: []byte("v1")}); err != nil {
		t.Fatalf("Produce with the app token: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := app.NewPartitionConsumer("events", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pc.Fetch(ctx)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "v1" {
		t.Fatalf("Fetch with the app token = %v, %v", recs, err)
	}
	list, err := ac.ListTokens(ctx)
	if err != nil || len(list) != 2 || list[1].ID != tok.ID {
		t.Fatalf("ListTokens = %+v, %v", list, err)
	}
	// Revoked on node 0; node 1 may trust its cached verification for at
	// most 5 seconds.
	if err := ac.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		_, err := app.DescribeTopic(ctx, "events")
		if errors.Is(err, client.ErrUnauthenticated) {
			break
		}
		if err != nil {
			t.Fatalf("DescribeTopic after revoke: %v", err)
		}
		if time.Since(revoked) > 6*time.Second {
			t.Fatal("node 1 still accepts a token revoked 6 s ago")
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
	if err := ac.RevokeToken(ctx, tok.ID); !errors.Is(err, client.ErrTokenNotFound) {
		t.Errorf("second RevokeToken = %v, want ErrTokenNotFound", err)
	}
}

// TestServeRefusesOpenListenWithoutAuth checks that serve refuses a
// --listen other machines can reach without --auth, before touching Redis
// or the bucket, unless --insecure-no-auth says so.
func TestServeRefusesOpenListenWithoutAuth(t *testing.T) {
	for _, tc := range []struct {
		listen string
		open   bool
	}{
		{":8080", true}, {"0.0.0.0:8080", true}, {"[::]:8080", true}, {"10.1.2.3:8080", true}, {"mamba.example:8080", true},
		{"127.0.0.1:8080", false}, {"127.9.9.9:0", false}, {"[::1]:8080", false}, {"localhost:8080", false},
	} {
		if got := !isLoopbackListen(tc.listen); got != tc.open {
			t.Errorf("isLoopbackListen(%q) = %v, want %v", tc.listen, !got, !tc.open)
		}
	}
	// An unreachable Redis: the refusal must come first.
	base := []string{"serve", "--bucket", "mem://", "--redis", "redis://127.0.0.1:1/0", "--listen", ":0"}
	_, errOut, code := runCLI(t, "", base...)
	if code != 1 || !strings.Contains(errOut, "--auth") || !strings.Contains(errOut, "--insecure-no-auth") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("serve --listen :0: exit %d, %q; want 1 and one line naming --auth and --insecure-no-auth", code, errOut)
	}
	_, errOut, code = runCLI(t, "", append(base, "--auth", "--insecure-no-auth")...)
	if code != 1 || !strings.Contains(errOut, "contradict") {
		t.Errorf("serve --auth --insecure-no-auth: exit %d, %q", code, errOut)
	}
	if err := checkListenAuth(serveOptions{listen: ":8080", insecureNoAuth: true}); err != nil {
		t.Errorf("--insecure-no-auth: %v", err)
	}
	if err := checkListenAuth(serveOptions{listen: ":8080", auth: true}); err != nil {
		t.Errorf("--auth: %v", err)
	}
}

// TestDevAuth runs mamba dev --auth: the API wants a token, and one
// created in its embedded Redis with mamba auth token create --redis works.
func TestDevAuth(t *testing.T) {
	nodeURL := fmt.Sprintf("http://127.0.0.1:%d", testserver.FreePort(t))
	redisAddr := fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t))
	startDev(t, "--auth", "--dir", t.TempDir(), "--listen", strings.TrimPrefix(nodeURL, "http://"), "--redis-listen", redisAddr)
	ctx := t.Context()
	anon, err := client.New(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	// The first answer may take a moment: the client retries until dev
	// listens (its connect timeout).
	if _, err := anon.ListTopics(ctx); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("ListTopics without a token = %v, want ErrUnauthenticated", err)
	}
	out, errOut, code := runCLI(t, "", "auth", "token", "create", "--redis", "redis://"+redisAddr+"/0", "--name", "dev", "--scope", "admin")
	if code != 0 {
		t.Fatalf("create in dev's Redis: exit %d, %q", code, errOut)
	}
	c, err := client.New(nodeURL, client.WithToken(strings.TrimSpace(out)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic(ctx, "dev-auth", 1); err != nil {
		t.Fatal(err)
	}
	// dev's own admin token, made at start, is there too.
	toks, err := c.ListTokens(ctx)
	if err != nil || len(toks) != 2 || toks[0].Name != "mamba dev" {
		t.Errorf("ListTokens = %+v, %v; want dev's token first", toks, err)
	}
}
