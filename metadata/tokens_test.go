package metadata_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mambamq/mamba/metadata"
)

func TestParseScope(t *testing.T) {
	good := []string{"admin", "produce:orders", "consume:orders-*", "group:g?", "produce:[a-c]*", "consume:*"}
	for _, s := range good {
		sc, err := metadata.ParseScope(s)
		if err != nil {
			t.Errorf("ParseScope(%q): %v", s, err)
			continue
		}
		if sc.String() != s {
			t.Errorf("ParseScope(%q).String() = %q", s, sc.String())
		}
	}
	bad := []string{"", "Admin", "admin:x", "produce", "produce:", "read:x", "consume:[a", "group:a/b", "group:a b", "produce:" + strings.Repeat("a", metadata.MaxScopeBytes)}
	for _, s := range bad {
		if _, err := metadata.ParseScope(s); !errors.Is(err, metadata.ErrBadScope) {
			t.Errorf("ParseScope(%q) = %v, want ErrBadScope", s, err)
		}
	}
	if _, err := metadata.ParseScopes(nil); !errors.Is(err, metadata.ErrBadScope) {
		t.Errorf("ParseScopes(nil) = %v, want ErrBadScope", err)
	}
	_, err := metadata.ParseScopes([]string{"read:x", "admin", "write:y"})
	if err == nil || !strings.Contains(err.Error(), "read:x") || !strings.Contains(err.Error(), "write:y") {
		t.Errorf("ParseScopes reports %v, want both bad scopes", err)
	}
}

func TestTokenAllows(t *testing.T) {
	scopes, err := metadata.ParseScopes([]string{"produce:orders-*", "consume:logs", "group:billing"})
	if err != nil {
		t.Fatal(err)
	}
	tok := metadata.TokenInfo{Scopes: scopes}
	cases := []struct {
		kind, name string
		want       bool
	}{
		{metadata.ScopeProduce, "orders-eu", true},
		{metadata.ScopeProduce, "orders", false},
		{metadata.ScopeConsume, "orders-eu", false},
		{metadata.ScopeConsume, "logs", true},
		{metadata.ScopeGroup, "billing", true},
		{metadata.ScopeGroup, "billing2", false},
	}
	for _, c := range cases {
		if got := tok.Allows(c.kind, c.name); got != c.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", c.kind, c.name, got, c.want)
		}
	}
	if tok.Admin() {
		t.Error("Admin() of a token without admin scope")
	}
	admin := metadata.TokenInfo{Scopes: []metadata.Scope{{Kind: metadata.ScopeAdmin}}}
	if !admin.Admin() || !admin.Allows(metadata.ScopeGroup, "anything") {
		t.Error("admin token is not allowed everything")
	}
}

// TestTokenStore creates, verifies, lists and revokes tokens, and checks
// that no key or value in Redis holds a token's secret.
func TestTokenStore(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := eng.start(t)
			ctx := t.Context()
			s := env.s
			raw, info, err := s.CreateToken(ctx, "ci", []string{"produce:orders-*", "group:g"})
			if err != nil {
				t.Fatal(err)
			}
			id, secret, err := metadata.ParseToken(raw)
			if err != nil || id != info.ID {
				t.Fatalf("ParseToken(%q) = %q, %v; want id %q", raw, id, err, info.ID)
			}
			got, err := s.VerifyToken(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != info.ID || got.Name != "ci" || len(got.Scopes) != 2 || got.Scopes[0].String() != "produce:orders-*" || !got.Created.Equal(info.Created) {
				t.Errorf("VerifyToken = %+v, want %+v", got, info)
			}
			// A wrong secret with the right id, and malformed tokens.
			wrong := metadata.TokenPrefix + id + "_" + strings.Repeat("0", 64)
			for _, bad := range []string{wrong, "", "mmb_", raw + "0", strings.ToUpper(raw), "mmb_" + id, "xyz_" + id + "_" + secret} {
				if _, err := s.VerifyToken(ctx, bad); !errors.Is(err, metadata.ErrTokenInvalid) {
					t.Errorf("VerifyToken(%q) = %v, want ErrTokenInvalid", bad, err)
				}
			}
			raw2, _, err := s.CreateToken(ctx, "admin", []string{"admin"})
			if err != nil {
				t.Fatal(err)
			}
			list, err := s.ListTokens(ctx)
			if err != nil || len(list) != 2 {
				t.Fatalf("ListTokens = %v, %v; want 2 tokens", list, err)
			}
			// The secrets are nowhere in Redis: not in a key, not in a value.
			_, secret2, _ := metadata.ParseToken(raw2)
			keys, err := env.rdb.Keys(ctx, "*").Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 3 {
				t.Errorf("keys %v, want two token hashes and the id set", keys)
			}
			for _, k := range keys {
				var vals []string
				switch env.rdb.Type(ctx, k).Val() {
				case "hash":
					for f, v := range env.rdb.HGetAll(ctx, k).Val() {
						vals = append(vals, f, v)
					}
				case "set":
					vals = env.rdb.SMembers(ctx, k).Val()
				default:
					t.Errorf("key %s has type %s", k, env.rdb.Type(ctx, k).Val())
				}
				for _, v := range append(vals, k) {
					if strings.Contains(v, secret) || strings.Contains(v, secret2) {
						t.Errorf("key %s holds a token secret", k)
					}
				}
			}
			if err := s.RevokeToken(ctx, id); err != nil {
				t.Fatal(err)
			}
			if _, err := s.VerifyToken(ctx, raw); !errors.Is(err, metadata.ErrTokenInvalid) {
				t.Errorf("VerifyToken after revoke = %v, want ErrTokenInvalid", err)
			}
			if err := s.RevokeToken(ctx, id); !errors.Is(err, metadata.ErrTokenNotFound) {
				t.Errorf("second RevokeToken = %v, want ErrTokenNotFound", err)
			}
			if err := s.RevokeToken(ctx, "../x"); !errors.Is(err, metadata.ErrTokenNotFound) {
				t.Errorf("RevokeToken(bad id) = %v, want ErrTokenNotFound", err)
			}
			list, err = s.ListTokens(ctx)
			if err != nil || len(list) != 1 || list[0].Name != "admin" {
				t.Fatalf("ListTokens after revoke = %v, %v; want the admin token", list, err)
			}
			for _, bad := range [][]string{nil, {"nope"}} {
				if _, _, err := s.CreateToken(ctx, "x", bad); !errors.Is(err, metadata.ErrBadScope) {
					t.Errorf("CreateToken(scopes %v) = %v, want ErrBadScope", bad, err)
				}
			}
			if _, _, err := s.CreateToken(ctx, "", []string{"admin"}); !errors.Is(err, metadata.ErrBadScope) {
				t.Errorf("CreateToken without a name = %v, want ErrBadScope", err)
			}
		})
	}
}
