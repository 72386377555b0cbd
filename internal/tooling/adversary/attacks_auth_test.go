package adversary

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mambamq/mamba/internal/wire"
)

// What a route asks of a token (docs/api.md, "Authentication"): open
// routes none, anyToken routes any valid token, scoped routes a scope
// that the narrow token (consume:nothing-*) does not have.
const (
	open     = "open"
	anyToken = "any token"
	scoped   = "scoped"
)

// routeNeeds is every route of docs/openapi.yaml and what it needs; the
// test fails when the two differ, so a new route is attacked too.
var routeNeeds = map[string]string{
	"POST /v1/topics":                                       scoped,
	"GET /v1/topics":                                        anyToken,
	"GET /v1/topics/{topic}":                                anyToken,
	"PATCH /v1/topics/{topic}":                              scoped,
	"DELETE /v1/topics/{topic}":                             scoped,
	"POST /v1/topics/{topic}/records":                       scoped,
	"GET /v1/topics/{topic}/partitions/{partition}/records": scoped,
	"GET /v1/groups":                                        anyToken,
	"GET /v1/groups/{group}":                                scoped,
	"DELETE /v1/groups/{group}":                             scoped,
	"POST /v1/groups/{group}/members":                       scoped,
	"POST /v1/groups/{group}/members/{member}/heartbeat":    scoped,
	"DELETE /v1/groups/{group}/members/{member}":            scoped,
	"POST /v1/groups/{group}/offsets":                       scoped,
	"POST /v1/groups/{group}/offsets/reset":                 scoped,
	"POST /v1/auth/tokens":                                  scoped,
	"GET /v1/auth/tokens":                                   scoped,
	"DELETE /v1/auth/tokens/{id}":                           scoped,
	"PATCH /v1/auth/tokens/{id}":                            scoped,
	"GET /healthz":                                          open,
	"GET /readyz":                                           open,
	"GET /metrics":                                          anyToken,
}

// documentedRoutes reads "METHOD /path" of every operation in
// docs/openapi.yaml.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("../../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse docs/openapi.yaml: %v", err)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	return routes
}

// tokenAttack calls every route with no token, a malformed one, a
// well-formed unknown one, a revoked admin token and a valid token of
// the wrong scope: 401 unauthenticated (with WWW-Authenticate) for the
// first four, 403 forbidden for the last on scoped routes; open routes
// answer everyone, and any-token routes the narrow token.
func tokenAttack(ctx context.Context, t *testing.T, e *env) {
	crossScope(ctx, t, e)
	routes := documentedRoutes(t)
	for _, r := range routes {
		if _, ok := routeNeeds[r]; !ok {
			t.Errorf("docs/openapi.yaml has %s, which the suite does not attack: add it to routeNeeds", r)
		}
	}
	for r := range routeNeeds {
		if !slices.Contains(routes, r) {
			t.Errorf("routeNeeds has %s, which docs/openapi.yaml does not", r)
		}
	}
	fill := strings.NewReplacer("{topic}", "attack-a", "{partition}", "0", "{group}", "attack-g",
		"{member}", someMember, "{id}", "0123456789abcdef")
	bad := map[string]string{
		"no token":        "",
		"malformed token": "not-a-token",
		"unknown token":   "mmb_0123456789abcdef_" + strings.Repeat("A", 43),
		"revoked token":   e.tokens.Revoked,
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		path = fill.Replace(path)
		if strings.Contains(path, "/partitions/") {
			path += "?offset=0"
		}
		var body []byte
		if method == http.MethodPost || method == http.MethodPatch {
			body = []byte(`{}`)
		}
		for what, tok := range bad {
			a, err := e.as(tok).Do(ctx, method, path, jsonType, body)
			switch {
			case routeNeeds[r] == open:
				if err != nil || a.Status != http.StatusOK {
					t.Errorf("%s with %s: %v, %v; want 200", r, what, a, err)
				}
			case err == nil && a.Is(http.StatusUnauthorized, wire.CodeUnauthenticated) && a.Header.Get("WWW-Authenticate") == "":
				t.Errorf("%s with %s: 401 without WWW-Authenticate", r, what)
			default:
				expect(t, r+" with "+what, a, err, http.StatusUnauthorized, wire.CodeUnauthenticated)
			}
		}
		a, err := e.as(e.tokens.Narrow).Do(ctx, method, path, jsonType, body)
		switch routeNeeds[r] {
		case scoped:
			expect(t, r+" with a token of the wrong scope", a, err, http.StatusForbidden, wire.CodeForbidden)
		default:
			if err != nil || a.Status != http.StatusOK {
				t.Errorf("%s with a valid token of another scope: %v, %v; want 200", r, a, err)
			}
		}
	}
}

// crossScope is the attacker's own valid token used on what belongs to
// the honest clients: their topic, their group, and a join of the
// attacker's group that names their topic.
func crossScope(ctx context.Context, t *testing.T, e *env) {
	c := e.as(e.tokens.Attacker)
	for _, req := range []struct{ what, method, path, body string }{
		{"produce to the honest topic", http.MethodPost, "/v1/topics/" + honestTopic + "/records", `{"records":[{"value":"x"}]}`},
		{"fetch the honest topic", http.MethodGet, "/v1/topics/" + honestTopic + "/partitions/0/records?offset=0", ""},
		{"join an honest group", http.MethodPost, "/v1/groups/honest-g/members", `{"topics":["attack-a"]}`},
		{"join naming the honest topic", http.MethodPost, "/v1/groups/attack-g/members", `{"topics":["attack-a","` + honestTopic + `"]}`},
		{"delete the honest topic", http.MethodDelete, "/v1/topics/" + honestTopic, ""},
		{"create a token", http.MethodPost, "/v1/auth/tokens", `{"name":"x","scopes":["admin"]}`},
	} {
		var body []byte
		if req.body != "" {
			body = []byte(req.body)
		}
		a, err := c.Do(ctx, req.method, req.path, jsonType, body)
		expect(t, "attacker token: "+req.what, a, err, http.StatusForbidden, wire.CodeForbidden)
	}
}
