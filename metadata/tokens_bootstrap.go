package metadata

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EnsureToken errors.
var (
	// ErrTokenConflict is returned by EnsureToken when a token with the
	// same id but another secret exists.
	ErrTokenConflict = errors.New("a token with this id and another secret exists")
	// ErrTokenRevoked is returned by EnsureToken for a token revoked
	// before: a revocation lasts, even for a bootstrap token whose file
	// still names it.
	ErrTokenRevoked = errors.New("token revoked")
)

// BootstrapTokenName is the name EnsureToken gives the bootstrap token.
const BootstrapTokenName = "bootstrap"

// GenerateToken returns a new token ("mmb_<id>_<secret>", 64 random bits
// of id and 256 of secret from crypto/rand) without storing it anywhere:
// for a deployment's bootstrap token, which the nodes create in Redis with
// EnsureToken when they start.
func GenerateToken() (string, error) {
	var idb [8]byte
	var secb [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	if _, err := rand.Read(secb[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(idb[:]) + "_" + hex.EncodeToString(secb[:]), nil
}

// EnsureToken stores raw (a token made by GenerateToken) as an admin token
// named BootstrapTokenName unless it is already there, and reports whether
// it created it. A token with raw's id but another secret is left alone
// and ErrTokenConflict returned; a malformed raw is ErrTokenInvalid.
//
// Nodes call it at start with their --bootstrap-token-file, so a new
// deployment, or one whose Redis was rebuilt by restore (checkpoints hold
// no tokens), has an admin token its operators already know. A token
// revoked before is not created again (ErrTokenRevoked): revocations are
// remembered in the set prefix:{@auth}:revoked.
func (s *Store) revokedKey() string { return s.prefix + ":{@auth}:revoked" }

func (s *Store) EnsureToken(ctx context.Context, raw string) (TokenInfo, bool, error) {
	id, secret, err := ParseToken(raw)
	if err != nil {
		return TokenInfo{}, false, err
	}
	info := TokenInfo{ID: id, Name: BootstrapTokenName, Scopes: []Scope{{Kind: ScopeAdmin}},
		Created: time.Now().UTC().Truncate(time.Millisecond)}
	res, err := ensureTokenScript.Run(ctx, s.rdb, []string{s.tokenKey(id), s.tokensKey(), s.revokedKey()},
		id, hashSecret(secret), info.Name, ScopeAdmin, info.Created.UnixMilli()).Text()
	switch {
	case err != nil && strings.Contains(err.Error(), "TOKEN_CONFLICT"):
		return TokenInfo{}, false, fmt.Errorf("%w: %s", ErrTokenConflict, id)
	case err != nil && strings.Contains(err.Error(), "TOKEN_REVOKED"):
		return TokenInfo{}, false, fmt.Errorf("%w: %s", ErrTokenRevoked, id)
	case err != nil:
		return TokenInfo{}, false, unavailable("ensure token", err)
	case res == "CREATED":
		return info, true, nil
	}
	m, err := s.rdb.HGetAll(ctx, s.tokenKey(id)).Result()
	if err != nil {
		return TokenInfo{}, false, unavailable("ensure token", err)
	}
	if len(m) == 0 {
		return TokenInfo{}, false, fmt.Errorf("ensure token %s: revoked while being ensured; start again", id)
	}
	info, err = tokenInfo(id, m)
	return info, false, err
}
