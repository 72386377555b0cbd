package metadata_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mambamq/mamba/metadata"
)

// TestEnsureToken creates a bootstrap token once, leaves it alone when
// ensured again, refuses another secret under the same id, and does not
// bring it back after a revoke.
func TestEnsureToken(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := eng.start(t)
			ctx := t.Context()
			s := env.s
			raw, err := metadata.GenerateToken()
			if err != nil {
				t.Fatal(err)
			}
			id, secret, err := metadata.ParseToken(raw)
			if err != nil {
				t.Fatalf("GenerateToken made %q: %v", raw, err)
			}
			info, created, err := s.EnsureToken(ctx, raw)
			if err != nil || !created || info.ID != id || !info.Admin() || info.Name != metadata.BootstrapTokenName {
				t.Fatalf("first EnsureToken = %+v, %v, %v; want a new admin token %s", info, created, err, id)
			}
			got, err := s.VerifyToken(ctx, raw)
			if err != nil || !got.Admin() || !got.Created.Equal(info.Created) {
				t.Fatalf("VerifyToken = %+v, %v; want the bootstrap admin token", got, err)
			}
			again, created, err := s.EnsureToken(ctx, raw)
			if err != nil || created || !again.Created.Equal(info.Created) {
				t.Errorf("second EnsureToken = %+v, %v, %v; want the same token, not created", again, created, err)
			}
			// Same id, another secret: refused, and the stored token unchanged.
			other := metadata.TokenPrefix + id + "_" + strings.Repeat("a", 64)
			if other == raw {
				other = metadata.TokenPrefix + id + "_" + strings.Repeat("b", 64)
			}
			if _, _, err := s.EnsureToken(ctx, other); !errors.Is(err, metadata.ErrTokenConflict) {
				t.Errorf("EnsureToken with another secret = %v, want ErrTokenConflict", err)
			}
			if _, err := s.VerifyToken(ctx, other); !errors.Is(err, metadata.ErrTokenInvalid) {
				t.Errorf("the conflicting secret verifies: %v", err)
			}
			if _, err := s.VerifyToken(ctx, raw); err != nil {
				t.Errorf("the original secret no longer verifies: %v", err)
			}
			for _, bad := range []string{"", "mmb_x_y", "CHANGE-ME", strings.ToUpper(raw)} {
				if _, _, err := s.EnsureToken(ctx, bad); !errors.Is(err, metadata.ErrTokenInvalid) {
					t.Errorf("EnsureToken(%q) = %v, want ErrTokenInvalid", bad, err)
				}
			}
			if err := s.RevokeToken(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, created, err := s.EnsureToken(ctx, raw); !errors.Is(err, metadata.ErrTokenRevoked) || created {
				t.Errorf("EnsureToken after revoke = %v, %v; want ErrTokenRevoked", created, err)
			}
			if _, err := s.VerifyToken(ctx, raw); !errors.Is(err, metadata.ErrTokenInvalid) {
				t.Errorf("VerifyToken of the revoked bootstrap token = %v, want ErrTokenInvalid", err)
			}
			// Nothing in Redis holds the secret.
			for _, k := range env.rdb.Keys(ctx, "*").Val() {
				if env.rdb.Type(ctx, k).Val() != "hash" {
					continue
				}
				for f, v := range env.rdb.HGetAll(ctx, k).Val() {
					if strings.Contains(f+v, secret) {
						t.Errorf("key %s holds the secret", k)
					}
				}
			}
		})
	}
}
