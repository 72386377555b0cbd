package metadata

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// API tokens. A token is "mmb_<id>_<secret>": id is 16 hex digits (64
// random bits) naming it, secret 64 hex digits (256 random bits from
// crypto/rand). The secret is shown once, when the token is created; Redis
// keeps only its SHA-256, with the token's name, scopes and creation time:
//
//	mamba:{@auth}:token:ID  hash  hash (hex SHA-256 of the secret), name,
//	                              scopes (space-separated), created_ms,
//	                              quota:NAME for each of its own quotas
//	mamba:{@auth}:tokens    set   ids of all tokens
//
// Both keys share the hash tag {@auth}, so creating and revoking a token
// are one transaction even on Redis Cluster; no topic or group can have
// that tag, since their names never hold '@'. Revoking deletes the token's hash
// and its id from the set; nothing else removes them.
//
// VerifyToken looks the id up and compares the SHA-256 of the presented
// secret with the stored one in constant time.

// Token errors.
var (
	// ErrTokenInvalid is returned by VerifyToken for a token that is
	// malformed, unknown, revoked or whose secret does not match.
	ErrTokenInvalid = errors.New("invalid token")
	// ErrTokenNotFound is returned by RevokeToken for an unknown id.
	ErrTokenNotFound = errors.New("token not found")
	// ErrBadScope is returned for a scope ParseScope refuses, for a
	// token name or scope list out of bounds, and for a bad quota.
	ErrBadScope = errors.New("invalid token request")
)

// Token limits.
const (
	// MaxTokenNameBytes bounds a token's name.
	MaxTokenNameBytes = 200
	// MaxTokenScopes bounds a token's scopes.
	MaxTokenScopes = 100
	// MaxScopeBytes bounds one scope.
	MaxScopeBytes = 300
	// TokenPrefix begins every token.
	TokenPrefix = "mmb_"
)

// Scope kinds. A scope is "admin", or "<kind>:<pattern>" where pattern is
// a path.Match pattern over topic names (produce, consume) or group names
// (group).
const (
	ScopeAdmin   = "admin"
	ScopeProduce = "produce"
	ScopeConsume = "consume"
	ScopeGroup   = "group"
)

// Scope is one permission of a token.
type Scope struct {
	// Kind is ScopeAdmin, ScopeProduce, ScopeConsume or ScopeGroup.
	Kind string
	// Pattern is a path.Match pattern of the topics or groups the scope
	// covers; empty for admin.
	Pattern string
}

// String is the scope as written: "admin", "produce:orders-*".
func (s Scope) String() string {
	if s.Kind == ScopeAdmin {
		return ScopeAdmin
	}
	return s.Kind + ":" + s.Pattern
}

// ParseScope reads "admin", "produce:P", "consume:P" or "group:P", with P a
// non-empty path.Match pattern (`*`, `?`, `[...]`; no `/` since names have
// none).
func ParseScope(s string) (Scope, error) {
	if len(s) > MaxScopeBytes {
		return Scope{}, fmt.Errorf("%w: scope of %d bytes is over %d", ErrBadScope, len(s), MaxScopeBytes)
	}
	if s == ScopeAdmin {
		return Scope{Kind: ScopeAdmin}, nil
	}
	kind, pat, ok := strings.Cut(s, ":")
	if !ok || (kind != ScopeProduce && kind != ScopeConsume && kind != ScopeGroup) {
		return Scope{}, fmt.Errorf("%w: scope %q: want admin, produce:PATTERN, consume:PATTERN or group:PATTERN", ErrBadScope, s)
	}
	if pat == "" || strings.ContainsAny(pat, "/ \t\r\n") {
		return Scope{}, fmt.Errorf("%w: scope %q: the pattern must be non-empty, without spaces or /", ErrBadScope, s)
	}
	if _, err := path.Match(pat, ""); err != nil {
		return Scope{}, fmt.Errorf("%w: scope %q: malformed pattern", ErrBadScope, s)
	}
	return Scope{Kind: kind, Pattern: pat}, nil
}

// ParseScopes parses every scope, reporting every bad one at once. At
// least one scope, at most MaxTokenScopes.
func ParseScopes(ss []string) ([]Scope, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("%w: a token needs at least one scope", ErrBadScope)
	}
	if len(ss) > MaxTokenScopes {
		return nil, fmt.Errorf("%w: %d scopes, at most %d", ErrBadScope, len(ss), MaxTokenScopes)
	}
	var errs []error
	out := make([]Scope, 0, len(ss))
	for _, s := range ss {
		sc, err := ParseScope(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, sc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// TokenInfo is what Redis keeps of a token: everything but its secret.
type TokenInfo struct {
	ID      string
	Name    string
	Scopes  []Scope
	Created time.Time
	// Quotas are the token's own quotas by name (wire.QuotaNames): a
	// name absent takes the node's default, 0 is unlimited. Nil when it
	// has none.
	Quotas map[string]int64
}

// Admin reports whether the token has the admin scope.
func (t TokenInfo) Admin() bool {
	return slices.ContainsFunc(t.Scopes, func(s Scope) bool { return s.Kind == ScopeAdmin })
}

// Allows reports whether the token may act on name (a topic or group) as
// kind (ScopeProduce, ScopeConsume or ScopeGroup): it has the admin scope,
// or a scope of that kind whose pattern matches name.
func (t TokenInfo) Allows(kind, name string) bool {
	for _, s := range t.Scopes {
		if s.Kind == ScopeAdmin {
			return true
		}
		if s.Kind == kind {
			if ok, _ := path.Match(s.Pattern, name); ok {
				return true
			}
		}
	}
	return false
}

func (s *Store) tokenKey(id string) string { return s.prefix + ":{@auth}:token:" + id }
func (s *Store) tokensKey() string         { return s.prefix + ":{@auth}:tokens" }

// ParseToken splits a token into its id and secret, or returns
// ErrTokenInvalid.
func ParseToken(raw string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(raw, TokenPrefix)
	if !ok {
		return "", "", ErrTokenInvalid
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || len(id) != 16 || len(secret) != 64 || !isLowerHex(id) || !isLowerHex(secret) {
		return "", "", ErrTokenInvalid
	}
	return id, secret, nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a token with the given name and scopes and returns it
// (the only time its secret is known) with what Redis keeps of it. The
// name is free text of at most MaxTokenNameBytes; scopes are checked with
// ParseScopes. The token takes the node's default quotas.
func (s *Store) CreateToken(ctx context.Context, name string, scopes []string) (string, TokenInfo, error) {
	return s.CreateTokenWithQuotas(ctx, name, scopes, nil)
}

// CreateTokenWithQuotas is CreateToken for a token with its own quotas
// (checked with ValidateTokenQuotas); a quota it leaves out takes the
// node's default.
func (s *Store) CreateTokenWithQuotas(ctx context.Context, name string, scopes []string, quotas map[string]int64) (string, TokenInfo, error) {
	if name == "" || len(name) > MaxTokenNameBytes || strings.ContainsAny(name, "\r\n") {
		return "", TokenInfo{}, fmt.Errorf("%w: the token name must be 1 to %d bytes on one line", ErrBadScope, MaxTokenNameBytes)
	}
	parsed, err := ParseScopes(scopes)
	if err != nil {
		return "", TokenInfo{}, err
	}
	if err := ValidateTokenQuotas(quotas); err != nil {
		return "", TokenInfo{}, err
	}
	raw, err := GenerateToken()
	if err != nil {
		return "", TokenInfo{}, fmt.Errorf("create token: %w", err)
	}
	id, secret, err := ParseToken(raw)
	if err != nil {
		return "", TokenInfo{}, err
	}
	info := TokenInfo{ID: id, Name: name, Scopes: parsed, Created: time.Now().UTC().Truncate(time.Millisecond)}
	if len(quotas) > 0 {
		info.Quotas = maps.Clone(quotas)
	}
	strs := make([]string, len(parsed))
	for i, sc := range parsed {
		strs[i] = sc.String()
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.tokenKey(id), "hash", hashSecret(secret), "name", name,
			"scopes", strings.Join(strs, " "), "created_ms", info.Created.UnixMilli())
		if len(quotas) > 0 {
			p.HSet(ctx, s.tokenKey(id), quotaArgs(quotas)...)
		}
		p.SAdd(ctx, s.tokensKey(), id)
		return nil
	})
	if err != nil {
		return "", TokenInfo{}, unavailable("create token", err)
	}
	return raw, info, nil
}

// VerifyToken returns what Redis keeps of raw's token, or ErrTokenInvalid
// when raw is malformed, unknown, revoked or its secret does not match.
func (s *Store) VerifyToken(ctx context.Context, raw string) (TokenInfo, error) {
	id, secret, err := ParseToken(raw)
	if err != nil {
		return TokenInfo{}, err
	}
	m, err := s.rdb.HGetAll(ctx, s.tokenKey(id)).Result()
	if err != nil {
		return TokenInfo{}, unavailable("verify token", err)
	}
	want, ok := m["hash"]
	if !ok {
		return TokenInfo{}, ErrTokenInvalid
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(want)) != 1 {
		return TokenInfo{}, ErrTokenInvalid
	}
	return tokenInfo(id, m)
}

func tokenInfo(id string, m map[string]string) (TokenInfo, error) {
	ms, err := strconv.ParseInt(m["created_ms"], 10, 64)
	if err != nil {
		return TokenInfo{}, fmt.Errorf("token %s: bad created_ms %q", id, m["created_ms"])
	}
	scopes, err := ParseScopes(strings.Fields(m["scopes"]))
	if err != nil {
		return TokenInfo{}, fmt.Errorf("token %s: %w", id, err)
	}
	quotas, err := parseQuotas(id, m)
	if err != nil {
		return TokenInfo{}, err
	}
	return TokenInfo{ID: id, Name: m["name"], Scopes: scopes, Created: time.UnixMilli(ms).UTC(), Quotas: quotas}, nil
}

// ListTokens returns every token, oldest first (then by id), without
// secrets.
func (s *Store) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	ids, err := s.rdb.SMembers(ctx, s.tokensKey()).Result()
	if err != nil {
		return nil, unavailable("list tokens", err)
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.HGetAll(ctx, s.tokenKey(id))
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return nil, unavailable("list tokens", err)
		}
	}
	out := make([]TokenInfo, 0, len(ids))
	for i, id := range ids {
		m := cmds[i].Val()
		if len(m) == 0 {
			continue // revoked between SMEMBERS and HGETALL
		}
		info, err := tokenInfo(id, m)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b TokenInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// RevokeToken deletes the token with the given id: from then on
// VerifyToken refuses it. ErrTokenNotFound when there is none.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	if len(id) != 16 || !isLowerHex(id) {
		return fmt.Errorf("%w: %q", ErrTokenNotFound, shortID(id))
	}
	var del *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, s.tokenKey(id))
		p.SRem(ctx, s.tokensKey(), id)
		// Remembered so that EnsureToken never brings it back.
		p.SAdd(ctx, s.revokedKey(), id)
		return nil
	})
	if err != nil {
		return unavailable("revoke token", err)
	}
	if del.Val() == 0 {
		return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 40 {
		return id[:40] + "..."
	}
	return id
}
