package client

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// WithToken sends "Authorization: Bearer tok" on every request, for a
// node started with --auth (docs/security.md). The token is never logged
// and never part of an error. It replaces an Authorization header given
// with WithHeader.
func WithToken(tok string) Opt {
	return func(c *clientConfig) {
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			c.errs = append(c.errs, errors.New("WithToken: the token is empty or holds spaces or control characters"))
			return
		}
		c.header.Set("Authorization", "Bearer "+tok)
	}
}

// Token is an API token as the node lists it: everything but its secret.
type Token struct {
	ID      string
	Name    string
	Scopes  []string
	Created time.Time
	// Quotas are the token's own quotas by name ("produce_bytes",
	// "produce_requests", "fetch_bytes", "long_polls",
	// "idempotency_keys"; docs/security.md): a name absent takes the
	// node's default (its --quota-* flag), 0 is unlimited.
	Quotas map[string]int64
}

// apiToken is a token as the admin API answers it.
type apiToken wire.Token

func (t apiToken) token() Token {
	tok := Token{ID: t.ID, Name: t.Name, Scopes: t.Scopes, Created: time.UnixMilli(t.CreatedMS).UTC()}
	if len(t.Quotas) > 0 {
		tok.Quotas = t.Quotas
	}
	return tok
}

// CreateToken makes an API token with the given name and scopes ("admin",
// "produce:PATTERN", "consume:PATTERN", "group:PATTERN") and returns it:
// the secret (mmb_<id>_<secret>) is in this answer only. It needs a
// client with an admin token. It is not retried after a request was
// sent, so that one call never makes two tokens.
func (c *Client) CreateToken(ctx context.Context, name string, scopes []string) (secret string, tok Token, err error) {
	return c.CreateTokenWithQuotas(ctx, name, scopes, nil)
}

// CreateTokenWithQuotas is CreateToken for a token with its own quotas
// (see Token.Quotas); a quota left out takes the node's default.
func (c *Client) CreateTokenWithQuotas(ctx context.Context, name string, scopes []string, quotas map[string]int64) (secret string, tok Token, err error) {
	in := struct {
		Name   string           `json:"name"`
		Scopes []string         `json:"scopes"`
		Quotas map[string]int64 `json:"quotas,omitempty"`
	}{name, scopes, quotas}
	var out apiToken
	if _, err := c.sendJSON(ctx, http.MethodPost, "/v1/auth/tokens", false, in, &out); err != nil {
		return "", Token{}, withOp("create token "+name, err)
	}
	return out.Token, out.token(), nil
}

// ListTokens returns every API token, oldest first, without secrets. It
// needs a client with an admin token.
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	var out struct {
		Tokens []apiToken `json:"tokens"`
	}
	if err := c.getJSON(ctx, "/v1/auth/tokens", &out); err != nil {
		return nil, withOp("list tokens", err)
	}
	toks := make([]Token, len(out.Tokens))
	for i, t := range out.Tokens {
		toks[i] = t.token()
	}
	return toks, nil
}

// RevokeToken deletes the API token with the given id, or returns
// ErrTokenNotFound. Every node refuses it within 5 seconds. It needs a
// client with an admin token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	if err := validateName("token id", id); err != nil {
		return withOp("revoke token", err)
	}
	if _, err := c.do(ctx, &request{method: http.MethodDelete, path: apiPath("v1", "auth", "tokens", id)}); err != nil {
		return withOp("revoke token "+id, err)
	}
	return nil
}

// UpdateTokenQuotas sets the quotas of set on the API token with the
// given id and removes those named in unset (it then takes the node's
// defaults for them), and returns the token as it is afterwards, or
// ErrTokenNotFound. Nodes apply the change within 5 seconds. It needs a
// client with an admin token.
func (c *Client) UpdateTokenQuotas(ctx context.Context, id string, set map[string]int64, unset []string) (Token, error) {
	if err := validateName("token id", id); err != nil {
		return Token{}, withOp("update token", err)
	}
	quotas := make(map[string]*int64, len(set)+len(unset))
	for name, v := range set {
		quotas[name] = &v
	}
	for _, name := range unset {
		quotas[name] = nil
	}
	in := struct {
		Quotas map[string]*int64 `json:"quotas"`
	}{quotas}
	var out apiToken
	if _, err := c.sendJSON(ctx, http.MethodPatch, apiPath("v1", "auth", "tokens", id), true, in, &out); err != nil {
		return Token{}, withOp("update token "+id, err)
	}
	return out.token(), nil
}
