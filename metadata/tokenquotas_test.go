package metadata_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// TestTokenQuotas stores quotas with a token, reads them back with
// VerifyToken and ListTokens, changes and removes them, and checks that
// an update never outlives its token.
func TestTokenQuotas(t *testing.T) {
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			env := eng.start(t)
			ctx := t.Context()
			s := env.s
			own := map[string]int64{wire.QuotaProduceBytes: 1 << 20, wire.QuotaLongPolls: 0}
			raw, info, err := s.CreateTokenWithQuotas(ctx, "q", []string{"produce:*"}, own)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(info.Quotas, own) {
				t.Fatalf("created quotas %v, want %v", info.Quotas, own)
			}
			got, err := s.VerifyToken(ctx, raw)
			if err != nil || !maps.Equal(got.Quotas, own) {
				t.Fatalf("VerifyToken quotas %v, %v; want %v", got.Quotas, err, own)
			}
			plain, _, err := s.CreateToken(ctx, "plain", []string{"admin"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.VerifyToken(ctx, plain); err != nil || got.Quotas != nil {
				t.Fatalf("a token without quotas verifies with %v, %v", got.Quotas, err)
			}
			upd, err := s.UpdateTokenQuotas(ctx, info.ID, map[string]int64{wire.QuotaFetchBytes: 5, wire.QuotaProduceBytes: 7}, []string{wire.QuotaLongPolls})
			want := map[string]int64{wire.QuotaFetchBytes: 5, wire.QuotaProduceBytes: 7}
			if err != nil || !maps.Equal(upd.Quotas, want) || upd.Name != "q" {
				t.Fatalf("UpdateTokenQuotas = %+v, %v; want quotas %v", upd, err, want)
			}
			list, err := s.ListTokens(ctx)
			if err != nil || len(list) != 2 || !maps.Equal(list[0].Quotas, want) {
				t.Fatalf("ListTokens = %+v, %v", list, err)
			}
			for name, bad := range map[string]func() error{
				"unknown name": func() error {
					_, _, err := s.CreateTokenWithQuotas(ctx, "x", []string{"admin"}, map[string]int64{"bytes": 1})
					return err
				},
				"negative": func() error {
					_, err := s.UpdateTokenQuotas(ctx, info.ID, map[string]int64{wire.QuotaFetchBytes: -1}, nil)
					return err
				},
				"too large": func() error {
					_, err := s.UpdateTokenQuotas(ctx, info.ID, map[string]int64{wire.QuotaFetchBytes: metadata.MaxTokenQuota + 1}, nil)
					return err
				},
				"set and unset": func() error {
					_, err := s.UpdateTokenQuotas(ctx, info.ID, map[string]int64{wire.QuotaFetchBytes: 1}, []string{wire.QuotaFetchBytes})
					return err
				},
				"unset unknown": func() error {
					_, err := s.UpdateTokenQuotas(ctx, info.ID, nil, []string{"nope"})
					return err
				},
			} {
				if err := bad(); !errors.Is(err, metadata.ErrBadScope) {
					t.Errorf("%s: %v, want ErrBadScope", name, err)
				}
			}
			if err := s.RevokeToken(ctx, info.ID); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{info.ID, "zz", "0123456789abcdef"} {
				if _, err := s.UpdateTokenQuotas(ctx, id, map[string]int64{wire.QuotaFetchBytes: 1}, nil); !errors.Is(err, metadata.ErrTokenNotFound) {
					t.Errorf("update of %q: %v, want ErrTokenNotFound", id, err)
				}
			}
			// The refused update left no hash behind its revoked token.
			if n, err := env.rdb.Exists(ctx, metadata.DefaultPrefix+":{@auth}:token:"+info.ID).Result(); err != nil || n != 0 {
				t.Errorf("the revoked token's hash exists after an update: %d, %v", n, err)
			}
		})
	}
}
