package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// TokenStore verifies and administers API tokens: a *metadata.Store.
type TokenStore interface {
	VerifyToken(ctx context.Context, raw string) (metadata.TokenInfo, error)
	CreateTokenWithQuotas(ctx context.Context, name string, scopes []string, quotas map[string]int64) (string, metadata.TokenInfo, error)
	ListTokens(ctx context.Context) ([]metadata.TokenInfo, error)
	RevokeToken(ctx context.Context, id string) error
	UpdateTokenQuotas(ctx context.Context, id string, set map[string]int64, unset []string) (metadata.TokenInfo, error)
}

var _ TokenStore = (*metadata.Store)(nil)

// MaxTokenCacheTTL bounds Options.TokenCacheTTL, and is its default: a
// token revoked on one node stops working on every node within it.
const MaxTokenCacheTTL = 5 * time.Second

// maxCachedTokens bounds the verified-token cache; past it, expired
// entries are dropped and, if it is still full, new tokens are verified
// but not cached.
const maxCachedTokens = 10000

// Errors of authentication and authorization, in errorTable.
var (
	errUnauthenticated = errors.New("unauthenticated")
	errForbidden       = errors.New("forbidden")
	errAuthOff         = fmt.Errorf("%w: authentication is off on this node (mamba serve --auth turns it on)", errRouteNotFound)
)

// access is what a route asks of a request's token.
type access int

const (
	// accessUnset is no entry: NewHandler refuses a route without one.
	accessUnset access = iota
	// accessOpen needs no token.
	accessOpen
	// accessAnyToken needs a valid token of any scope.
	accessAnyToken
	// accessAdmin needs the admin scope.
	accessAdmin
	// accessProduce needs produce:P with P matching {topic}.
	accessProduce
	// accessConsume needs consume:P with P matching {topic}.
	accessConsume
	// accessGroup needs group:P with P matching {group}.
	accessGroup
	// accessGroupJoin needs group:P matching {group} here, and the
	// handler checks consume:P for each topic of the body.
	accessGroupJoin
)

// routeAccess is the scope every route needs when authentication is on
// (docs/api.md, "Authentication"). Every route of routes has an entry: a
// test checks it, and NewHandler panics without one. The admin scope
// passes every check.
var routeAccess = map[string]access{
	"POST /v1/topics":                                       accessAdmin,
	"GET /v1/topics":                                        accessAnyToken,
	"GET /v1/topics/{topic}":                                accessAnyToken,
	"PATCH /v1/topics/{topic}":                              accessAdmin,
	"DELETE /v1/topics/{topic}":                             accessAdmin,
	"POST /v1/topics/{topic}/records":                       accessProduce,
	"GET /v1/topics/{topic}/partitions/{partition}/records": accessConsume,
	"GET /v1/groups":                                        accessAnyToken,
	"GET /v1/groups/{group}":                                accessGroup,
	"DELETE /v1/groups/{group}":                             accessGroup,
	"POST /v1/groups/{group}/members":                       accessGroupJoin,
	"POST /v1/groups/{group}/members/{member}/heartbeat":    accessGroup,
	"DELETE /v1/groups/{group}/members/{member}":            accessGroup,
	"POST /v1/groups/{group}/offsets":                       accessGroup,
	"POST /v1/groups/{group}/offsets/reset":                 accessGroup,
	"POST /v1/auth/tokens":                                  accessAdmin,
	"GET /v1/auth/tokens":                                   accessAdmin,
	"DELETE /v1/auth/tokens/{id}":                           accessAdmin,
	"PATCH /v1/auth/tokens/{id}":                            accessAdmin,
	"GET /healthz":                                          accessOpen,
	"GET /readyz":                                           accessOpen,
	"GET /metrics":                                          accessAnyToken,
}

type tokenCtxKey struct{}

// authorize checks r's bearer token against what the route needs, and
// puts the verified token in the context it returns. With authentication
// off it returns r's context unchanged.
func (h *handler) authorize(r *http.Request, need access) (context.Context, error) {
	ctx := r.Context()
	if h.opts.Tokens == nil || need == accessOpen {
		return ctx, nil
	}
	tok, err := h.authenticate(r)
	if err != nil {
		return ctx, err
	}
	ctx = context.WithValue(ctx, tokenCtxKey{}, tok)
	switch need {
	case accessAnyToken:
		return ctx, nil
	case accessAdmin:
		if !tok.Admin() {
			return ctx, fmt.Errorf("%w: this request needs the admin scope", errForbidden)
		}
		return ctx, nil
	case accessProduce:
		return ctx, needScope(tok, metadata.ScopeProduce, r.PathValue("topic"))
	case accessConsume:
		return ctx, needScope(tok, metadata.ScopeConsume, r.PathValue("topic"))
	case accessGroup, accessGroupJoin:
		return ctx, needScope(tok, metadata.ScopeGroup, r.PathValue("group"))
	}
	return ctx, fmt.Errorf("route access %d unknown", need)
}

// needScope is nil when tok allows kind on name, or a forbidden error
// naming the scope wanted.
func needScope(tok metadata.TokenInfo, kind, name string) error {
	if tok.Allows(kind, name) {
		return nil
	}
	return fmt.Errorf("%w: this request needs scope %s:%s (or admin)", errForbidden, kind, shorten(name))
}

// authorizeTopics checks that the request's token, if authentication is
// on, allows kind on every topic.
func authorizeTopics(ctx context.Context, kind string, topics []string) error {
	tok, ok := ctx.Value(tokenCtxKey{}).(metadata.TokenInfo)
	if !ok {
		return nil
	}
	for _, t := range topics {
		if err := needScope(tok, kind, t); err != nil {
			return err
		}
	}
	return nil
}

// authenticate reads the bearer token of r and verifies it, from the
// cache when it was verified within the cache's lifetime.
func (h *handler) authenticate(r *http.Request) (metadata.TokenInfo, error) {
	hdr := r.Header.Values("Authorization")
	if len(hdr) == 0 {
		return metadata.TokenInfo{}, fmt.Errorf("%w: no Authorization header; send Authorization: Bearer <token>", errUnauthenticated)
	}
	scheme, raw, ok := strings.Cut(hdr[0], " ")
	if len(hdr) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
		return metadata.TokenInfo{}, fmt.Errorf("%w: malformed Authorization header; send Authorization: Bearer <token>", errUnauthenticated)
	}
	key := sha256.Sum256([]byte(raw))
	if tok, ok := h.tokens.get(key); ok {
		return tok, nil
	}
	tok, err := h.opts.Tokens.VerifyToken(r.Context(), raw)
	if errors.Is(err, metadata.ErrTokenInvalid) {
		return metadata.TokenInfo{}, fmt.Errorf("%w: the bearer token is malformed, unknown or revoked", errUnauthenticated)
	}
	if err != nil {
		return metadata.TokenInfo{}, err
	}
	h.tokens.put(key, tok)
	return tok, nil
}

// tokenCache keeps tokens verified within ttl, keyed by the SHA-256 of the
// presented token (never the token itself).
type tokenCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[[32]byte]cachedToken
}

type cachedToken struct {
	tok metadata.TokenInfo
	at  time.Time
}

func (c *tokenCache) get(key [32]byte) (metadata.TokenInfo, bool) {
	if c.ttl <= 0 {
		return metadata.TokenInfo{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || time.Since(e.at) >= c.ttl {
		return metadata.TokenInfo{}, false
	}
	return e.tok, true
}

func (c *tokenCache) put(key [32]byte, tok metadata.TokenInfo) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[[32]byte]cachedToken)
	}
	if len(c.m) >= maxCachedTokens {
		for k, e := range c.m {
			if time.Since(e.at) >= c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCachedTokens {
			return
		}
	}
	c.m[key] = cachedToken{tok: tok, at: time.Now()}
}

// forget drops the token with the given id, so that a revocation through
// this node takes effect here at once.
func (c *tokenCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.tok.ID == id {
			delete(c.m, k)
		}
	}
}

// apiToken is a token as the admin API shows it (wire.Token).
type apiToken = wire.Token

func tokenToAPI(t metadata.TokenInfo) apiToken {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = s.String()
	}
	quotas := t.Quotas
	if quotas == nil {
		quotas = map[string]int64{}
	}
	return apiToken{ID: t.ID, Name: t.Name, Scopes: scopes, CreatedMS: t.Created.UnixMilli(), Quotas: quotas}
}

type apiCreateToken struct {
	Name   string           `json:"name"`
	Scopes []string         `json:"scopes"`
	Quotas map[string]int64 `json:"quotas"`
}

// apiUpdateToken changes a token's own quotas: a number sets one, null
// removes it (the token then takes the node's default), a name left out
// keeps its value.
type apiUpdateToken struct {
	Quotas map[string]*int64 `json:"quotas"`
}

func (h *handler) createToken(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Tokens == nil {
		return errAuthOff
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiCreateToken
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	raw, info, err := h.opts.Tokens.CreateTokenWithQuotas(r.Context(), req.Name, req.Scopes, req.Quotas)
	if err != nil {
		return err
	}
	out := tokenToAPI(info)
	out.Token = raw
	w.Header().Set("Cache-Control", "no-store")
	h.writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *handler) listTokens(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Tokens == nil {
		return errAuthOff
	}
	list, err := h.opts.Tokens.ListTokens(r.Context())
	if err != nil {
		return err
	}
	out := make([]apiToken, len(list))
	for i, t := range list {
		out[i] = tokenToAPI(t)
	}
	h.writeJSON(w, http.StatusOK, map[string][]apiToken{"tokens": out})
	return nil
}

func (h *handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Tokens == nil {
		return errAuthOff
	}
	id := r.PathValue("id")
	if err := h.opts.Tokens.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	h.tokens.forget(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// updateToken changes the quotas of a token. This node applies them at
// once; other nodes within their token cache's lifetime.
func (h *handler) updateToken(w http.ResponseWriter, r *http.Request) error {
	if h.opts.Tokens == nil {
		return errAuthOff
	}
	body, err := h.readBody(w, r)
	if err != nil {
		return err
	}
	var req apiUpdateToken
	if err := decodeJSONBody(body, &req); err != nil {
		return err
	}
	set := make(map[string]int64)
	var unset []string
	for name, v := range req.Quotas {
		if v == nil {
			unset = append(unset, name)
		} else {
			set[name] = *v
		}
	}
	id := r.PathValue("id")
	info, err := h.opts.Tokens.UpdateTokenQuotas(r.Context(), id, set, unset)
	if err != nil {
		return err
	}
	h.tokens.forget(id)
	h.writeJSON(w, http.StatusOK, tokenToAPI(info))
	return nil
}
