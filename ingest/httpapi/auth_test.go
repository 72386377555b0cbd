package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// authCase is how the auth table test calls one route: a request the
// scripted service answers with success, the scopes of a token that may
// make it (not admin, unless only admin may), and the scopes of tokens
// that may not (none for routes any valid token may call).
type authCase struct {
	method, target, body string
	// target may hold "{id}", replaced by the id of a fresh token.
	right  []string
	wrongs [][]string
}

// authCases has one entry per route: TestAuthEveryRoute fails for a route
// without one, so a new route cannot go untested.
var authCases = map[string]authCase{
	"POST /v1/topics": {method: "POST", target: "/v1/topics", body: `{"name":"orders","partitions":1}`,
		right: []string{"admin"}, wrongs: [][]string{{"produce:*", "consume:*", "group:*"}}},
	"GET /v1/topics":         {method: "GET", target: "/v1/topics", right: []string{"group:unrelated"}},
	"GET /v1/topics/{topic}": {method: "GET", target: "/v1/topics/orders", right: []string{"group:unrelated"}},
	"PATCH /v1/topics/{topic}": {method: "PATCH", target: "/v1/topics/orders", body: `{"retention_ms":60000}`,
		right: []string{"admin"}, wrongs: [][]string{{"produce:*", "consume:*", "group:*"}}},
	"DELETE /v1/topics/{topic}": {method: "DELETE", target: "/v1/topics/orders",
		right: []string{"admin"}, wrongs: [][]string{{"produce:orders", "consume:orders"}}},
	"POST /v1/topics/{topic}/records": {method: "POST", target: "/v1/topics/orders/records", body: `{"records":[{"value":"v"}]}`,
		right: []string{"produce:ord*"}, wrongs: [][]string{{"consume:orders", "group:*"}, {"produce:order"}}},
	"GET /v1/topics/{topic}/partitions/{partition}/records": {method: "GET", target: "/v1/topics/orders/partitions/0/records?offset=0",
		right: []string{"consume:orders"}, wrongs: [][]string{{"produce:orders", "group:*"}, {"consume:logs"}}},
	"GET /v1/groups": {method: "GET", target: "/v1/groups", right: []string{"produce:x"}},
	"GET /v1/groups/{group}": {method: "GET", target: "/v1/groups/billing",
		right: []string{"group:bill*"}, wrongs: [][]string{{"consume:*", "produce:*", "group:other"}}},
	"DELETE /v1/groups/{group}": {method: "DELETE", target: "/v1/groups/billing",
		right: []string{"group:billing"}, wrongs: [][]string{{"consume:*", "group:billing2"}}},
	"POST /v1/groups/{group}/members": {method: "POST", target: "/v1/groups/billing/members", body: `{"topics":["orders","logs"]}`,
		right: []string{"group:billing", "consume:orders", "consume:logs"},
		// The group alone, the topics alone, and one topic short.
		wrongs: [][]string{{"group:billing"}, {"consume:*"}, {"group:billing", "consume:orders"}}},
	"POST /v1/groups/{group}/members/{member}/heartbeat": {method: "POST", target: "/v1/groups/billing/members/m1/heartbeat",
		right: []string{"group:billing"}, wrongs: [][]string{{"consume:*"}}},
	"DELETE /v1/groups/{group}/members/{member}": {method: "DELETE", target: "/v1/groups/billing/members/m1",
		right: []string{"group:billing"}, wrongs: [][]string{{"consume:*", "group:b"}}},
	"POST /v1/groups/{group}/offsets": {method: "POST", target: "/v1/groups/billing/offsets", body: `{"offsets":[{"topic":"orders","partition":0,"offset":5,"lease":1}]}`,
		right: []string{"group:billing"}, wrongs: [][]string{{"consume:orders"}}},
	"POST /v1/groups/{group}/offsets/reset": {method: "POST", target: "/v1/groups/billing/offsets/reset", body: `{"topic":"orders","to":"earliest"}`,
		right: []string{"group:billing"}, wrongs: [][]string{{"consume:orders", "produce:orders"}}},
	"POST /v1/auth/tokens": {method: "POST", target: "/v1/auth/tokens", body: `{"name":"n","scopes":["consume:x"]}`,
		right: []string{"admin"}, wrongs: [][]string{{"produce:*", "consume:*", "group:*"}}},
	"GET /v1/auth/tokens": {method: "GET", target: "/v1/auth/tokens",
		right: []string{"admin"}, wrongs: [][]string{{"group:*"}}},
	"DELETE /v1/auth/tokens/{id}": {method: "DELETE", target: "/v1/auth/tokens/{id}",
		right: []string{"admin"}, wrongs: [][]string{{"group:*", "consume:*"}}},
	"PATCH /v1/auth/tokens/{id}": {method: "PATCH", target: "/v1/auth/tokens/{id}", body: `{"quotas":{"fetch_bytes":1}}`,
		right: []string{"admin"}, wrongs: [][]string{{"group:*", "consume:*", "produce:*"}}},
	"GET /healthz": {method: "GET", target: "/healthz"},
	"GET /readyz":  {method: "GET", target: "/readyz"},
	"GET /metrics": {method: "GET", target: "/metrics", right: []string{"consume:x"}},
}

func TestRouteAccessCoversRoutes(t *testing.T) {
	registered := map[string]bool{}
	for _, rt := range routes {
		p := rt.method + " " + rt.path
		registered[p] = true
		if routeAccess[p] == accessUnset {
			t.Errorf("route %s has no entry in routeAccess", p)
		}
		if _, ok := authCases[p]; !ok {
			t.Errorf("route %s has no case in authCases", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(routeAccess)) {
		if !registered[p] {
			t.Errorf("routeAccess names %s, which is no route", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(authCases)) {
		if !registered[p] {
			t.Errorf("authCases names %s, which is no route", p)
		}
	}
}

// authTest is a handler with authentication on, over a scripted service
// and a token store on miniredis, without a token cache (so revocations
// are seen at once).
type authTest struct {
	*apiTest
	store *metadata.Store
}

func newAuthTest(t *testing.T) *authTest {
	t.Helper()
	return newAuthTestWith(t, Options{TokenCacheTTL: -1})
}

// newAuthTestWith is newAuthTest with the given options, Tokens set to
// the test's store.
func newAuthTestWith(t *testing.T, opts Options) *authTest {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := metadata.New(rdb, metadata.Options{})
	opts.Tokens = store
	return &authTest{apiTest: newAPITest(t, opts), store: store}
}

func (at *authTest) token(t *testing.T, scopes ...string) (raw, id string) {
	t.Helper()
	raw, info, err := at.store.CreateToken(t.Context(), "test", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return raw, info.ID
}

// call makes c's request with the given Authorization header value (none
// when empty).
func (at *authTest) call(t *testing.T, c authCase, authz string) *httptest.ResponseRecorder {
	t.Helper()
	target := c.target
	if strings.Contains(target, "{id}") {
		_, id := at.token(t, "consume:victim")
		target = strings.ReplaceAll(target, "{id}", id)
	}
	h := jsonHeader()
	if authz != "" {
		h = append(h, "Authorization", authz)
	}
	return at.do(c.method, target, strings.NewReader(c.body), h...)
}

// TestAuthEveryRoute calls every route with no token, malformed and
// unknown tokens, a revoked token, tokens of the wrong scope, the right
// scope and admin.
func TestAuthEveryRoute(t *testing.T) {
	at := newAuthTest(t)
	revokedRaw, revokedID := at.token(t, "admin")
	if err := at.store.RevokeToken(t.Context(), revokedID); err != nil {
		t.Fatal(err)
	}
	adminRaw, _ := at.token(t, "admin")
	_, adminSecret, _ := metadata.ParseToken(adminRaw)
	for _, pattern := range slices.Sorted(maps.Keys(authCases)) {
		c := authCases[pattern]
		t.Run(pattern, func(t *testing.T) {
			expect := func(name string, rec *httptest.ResponseRecorder, status int, code, inMessage string) {
				t.Helper()
				if rec.Code != status {
					t.Fatalf("%s: status %d, want %d", name, rec.Code, status)
				}
				if code == "" {
					return
				}
				e := errorOf(t, rec)
				if e.Code != code || !strings.Contains(e.Message, inMessage) {
					t.Errorf("%s: error %s %q, want %s containing %q", name, e.Code, e.Message, code, inMessage)
				}
				if strings.Contains(rec.Body.String(), "mmb_") || strings.Contains(rec.Body.String(), adminSecret) {
					t.Errorf("%s: error body %q echoes a token", name, rec.Body)
				}
				if status == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s: WWW-Authenticate %q, want Bearer", name, rec.Header().Get("WWW-Authenticate"))
				}
			}
			if routeAccess[pattern] == accessOpen {
				for _, authz := range []string{"", "Bearer nonsense", "Bearer " + revokedRaw} {
					if rec := at.call(t, c, authz); rec.Code != http.StatusOK {
						t.Errorf("open route with Authorization %q: status %d, want 200", authz, rec.Code)
					}
				}
				return
			}
			expect("no token", at.call(t, c, ""), 401, "unauthenticated", "no Authorization header")
			for _, bad := range []string{"Basic dXNlcjpwYXNz", "Bearer", "Bearer ", adminRaw, "Bearer mmb_nonsense", "Bearer " + adminRaw + "0",
				"Bearer mmb_0123456789abcdef_" + strings.Repeat("a", 64), "Bearer " + strings.Replace(adminRaw, adminSecret, strings.Repeat("b", 64), 1)} {
				expect(fmt.Sprintf("token %q", bad), at.call(t, c, bad), 401, "unauthenticated", "")
			}
			expect("revoked token", at.call(t, c, "Bearer "+revokedRaw), 401, "unauthenticated", "revoked")
			for _, scopes := range c.wrongs {
				raw, _ := at.token(t, scopes...)
				expect(fmt.Sprintf("scopes %v", scopes), at.call(t, c, "Bearer "+raw), 403, "forbidden", "needs")
			}
			raw, _ := at.token(t, c.right...)
			if rec := at.call(t, c, "Bearer "+raw); rec.Code >= 300 {
				t.Errorf("scopes %v: status %d %s, want success", c.right, rec.Code, rec.Body)
			}
			if rec := at.call(t, c, "bearer "+adminRaw); rec.Code >= 300 {
				t.Errorf("admin (lower-case scheme): status %d %s, want success", rec.Code, rec.Body)
			}
		})
	}
}

func TestAuthForbiddenNamesScope(t *testing.T) {
	at := newAuthTest(t)
	raw, _ := at.token(t, "group:billing", "consume:orders")
	rec := at.do("POST", "/v1/groups/billing/members", strings.NewReader(`{"topics":["orders","logs"]}`), "Authorization", "Bearer "+raw)
	if rec.Code != 403 {
		t.Fatalf("status %d, want 403", rec.Code)
	}
	if e := errorOf(t, rec); !strings.Contains(e.Message, "consume:logs") {
		t.Errorf("message %q does not name consume:logs", e.Message)
	}
	if slices.Contains(at.svc.calls, "JoinGroup") {
		t.Errorf("a forbidden join reached the service: %v", at.svc.calls)
	}
	rec = at.do("POST", "/v1/topics", strings.NewReader(`{"name":"x","partitions":1}`), "Authorization", "Bearer "+raw)
	if e := errorOf(t, rec); rec.Code != 403 || !strings.Contains(e.Message, "admin") {
		t.Errorf("create topic: %d %q, want 403 naming admin", rec.Code, e.Message)
	}
}

// TestAuthTokenAPI creates, lists and revokes a token through the API, and
// checks that a revoked token is refused at once by the node that revoked
// it, even with the token cache on.
func TestAuthTokenAPI(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := metadata.New(rdb, metadata.Options{})
	at := newAPITest(t, Options{Tokens: store})
	admin, _, err := store.CreateToken(t.Context(), "root", []string{"admin"})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(tok string) []string {
		return []string{"Authorization", "Bearer " + tok, "Content-Type", "application/json"}
	}
	rec := at.do("POST", "/v1/auth/tokens", strings.NewReader(`{"name":"p","scopes":["produce:orders"]}`), auth(admin)...)
	if rec.Code != 201 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var created apiToken
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Token, "mmb_"+created.ID+"_") || created.Name != "p" || !slices.Equal(created.Scopes, []string{"produce:orders"}) {
		t.Fatalf("created %+v", created)
	}
	produce := func() int {
		return at.do("POST", "/v1/topics/orders/records", strings.NewReader(`{"records":[{"value":"v"}]}`), auth(created.Token)...).Code
	}
	if c := produce(); c != 200 {
		t.Fatalf("produce with the new token: %d", c)
	}
	rec = at.do("GET", "/v1/auth/tokens", nil, auth(admin)...)
	if strings.Contains(rec.Body.String(), created.Token) || strings.Contains(rec.Body.String(), `"token"`) {
		t.Errorf("list shows a secret: %s", rec.Body)
	}
	var list struct{ Tokens []apiToken }
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Tokens) != 2 || list.Tokens[1].ID != created.ID {
		t.Errorf("list = %+v, want root then p", list.Tokens)
	}
	for _, body := range []string{`{"name":"x","scopes":["read:orders"]}`, `{"name":"x","scopes":[]}`, `{"name":"","scopes":["admin"]}`, `{"name":"x","scopes":["admin"],"ttl":1}`} {
		rec := at.do("POST", "/v1/auth/tokens", strings.NewReader(body), auth(admin)...)
		if e := errorOf(t, rec); rec.Code != 400 || e.Code != "invalid_request" {
			t.Errorf("create %s: %d %s, want 400 invalid_request", body, rec.Code, e.Code)
		}
	}
	if rec := at.do("DELETE", "/v1/auth/tokens/"+created.ID, nil, auth(admin)...); rec.Code != 204 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if c := produce(); c != 401 {
		t.Errorf("produce with the revoked token: %d, want 401", c)
	}
	rec = at.do("DELETE", "/v1/auth/tokens/"+created.ID, nil, auth(admin)...)
	if e := errorOf(t, rec); rec.Code != 404 || e.Code != "token_not_found" {
		t.Errorf("second revoke: %d %s, want 404 token_not_found", rec.Code, e.Code)
	}
}

// TestAuthOff checks that without a token store no header is checked and
// the token routes answer 404.
func TestAuthOff(t *testing.T) {
	at := newAPITest(t, Options{})
	if rec := at.do("GET", "/v1/topics", nil); rec.Code != 200 {
		t.Errorf("list topics without auth: %d", rec.Code)
	}
	for _, m := range []string{"GET", "POST"} {
		rec := at.do(m, "/v1/auth/tokens", strings.NewReader(`{"name":"x","scopes":["admin"]}`), jsonHeader()...)
		if e := errorOf(t, rec); rec.Code != 404 || e.Code != "not_found" || !strings.Contains(e.Message, "--auth") {
			t.Errorf("%s /v1/auth/tokens with auth off: %d %s %q", m, rec.Code, e.Code, e.Message)
		}
	}
	if err := (Options{TokenCacheTTL: MaxTokenCacheTTL + 1}).Validate(); err == nil {
		t.Error("Validate accepts a token cache ttl over the maximum")
	}
}

// TestAuthTokenCache checks that a node trusts a verified token for at
// most its cache lifetime: a token revoked behind its back (by another
// node) still works at once, and stops working once the lifetime passed.
func TestAuthTokenCache(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := metadata.New(rdb, metadata.Options{})
	const ttl = 300 * time.Millisecond
	at := newAPITest(t, Options{Tokens: store, TokenCacheTTL: ttl})
	raw, info, err := store.CreateToken(t.Context(), "c", []string{"group:x"})
	if err != nil {
		t.Fatal(err)
	}
	list := func() int { return at.do("GET", "/v1/topics", nil, "Authorization", "Bearer "+raw).Code }
	cached := time.Now() // the cache entry is at least this recent
	if c := list(); c != 200 {
		t.Fatalf("first request: %d", c)
	}
	if err := store.RevokeToken(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if c := list(); c != 200 {
		t.Fatalf("request right after a revocation elsewhere: %d, want 200 from the cache", c)
	}
	for list() == 200 {
		if time.Since(revoked) > ttl+2*time.Second {
			t.Fatal("the revoked token still works well past the cache lifetime")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if d := time.Since(cached); d < ttl {
		t.Errorf("the cached token was refused %v after it was verified, before the lifetime %v", d, ttl)
	}
}
