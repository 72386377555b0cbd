package metadata

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/wire"
)

// Token quotas. A token may carry its own quotas, which override the
// node's defaults (docs/security.md, "Quotas"). Each is one more field of
// the token's hash, "quota:NAME" (NAME from wire.QuotaNames) holding a
// decimal integer: at most five fields of a few bytes, removed with the
// hash when the token is revoked, or one by one by UpdateTokenQuotas.

// MaxTokenQuota bounds a quota's value: 2^50 (a pebibyte a second, or as
// many requests or keys).
const MaxTokenQuota = 1 << 50

// quotaField prefixes the hash field of each quota.
const quotaField = "quota:"

// ValidateTokenQuotas reports every quota whose name is not one of
// wire.QuotaNames or whose value is outside 0..MaxTokenQuota, as
// ErrBadScope.
func ValidateTokenQuotas(quotas map[string]int64) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(quotas)) {
		if err := validQuotaName(name); err != nil {
			errs = append(errs, err)
		} else if v := quotas[name]; v < 0 || v > MaxTokenQuota {
			errs = append(errs, fmt.Errorf("%w: quota %s = %d: want 0 (unlimited) to %d", ErrBadScope, name, v, int64(MaxTokenQuota)))
		}
	}
	return errors.Join(errs...)
}

func validQuotaName(name string) error {
	if !slices.Contains(wire.QuotaNames(), name) {
		return fmt.Errorf("%w: no quota %q; want one of %s", ErrBadScope, shortID(name), strings.Join(wire.QuotaNames(), ", "))
	}
	return nil
}

// quotaArgs are the HSET field-value pairs of quotas.
func quotaArgs(quotas map[string]int64) []any {
	args := make([]any, 0, 2*len(quotas))
	for name, v := range quotas {
		args = append(args, quotaField+name, v)
	}
	return args
}

// parseQuotas reads the quota fields of a token's hash. A field of a
// quota this version does not know is skipped: a newer node wrote it.
func parseQuotas(id string, m map[string]string) (map[string]int64, error) {
	var out map[string]int64
	for f, v := range m {
		name, ok := strings.CutPrefix(f, quotaField)
		if !ok || validQuotaName(name) != nil {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("token %s: bad quota %s %q", id, name, v)
		}
		if out == nil {
			out = make(map[string]int64)
		}
		out[name] = n
	}
	return out, nil
}

// UpdateTokenQuotas sets the quotas of set and removes those named by
// unset (the token then takes the node's default) on the token with the
// given id, and returns the token as it is afterwards. ErrTokenNotFound
// when there is none; ErrBadScope for a bad name or value. Nodes apply
// the change within their token cache's lifetime.
func (s *Store) UpdateTokenQuotas(ctx context.Context, id string, set map[string]int64, unset []string) (TokenInfo, error) {
	if len(id) != 16 || !isLowerHex(id) {
		return TokenInfo{}, fmt.Errorf("%w: %q", ErrTokenNotFound, shortID(id))
	}
	errs := []error{ValidateTokenQuotas(set)}
	for _, name := range unset {
		errs = append(errs, validQuotaName(name))
		if _, ok := set[name]; ok {
			errs = append(errs, fmt.Errorf("%w: quota %s is both set and unset", ErrBadScope, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return TokenInfo{}, err
	}
	key := s.tokenKey(id)
	var after map[string]string
	update := func(tx *redis.Tx) error {
		m, err := tx.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		if _, ok := m["hash"]; !ok {
			return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if len(set) > 0 {
				p.HSet(ctx, key, quotaArgs(set)...)
			}
			for _, name := range unset {
				p.HDel(ctx, key, quotaField+name)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for name, v := range set {
			m[quotaField+name] = strconv.FormatInt(v, 10)
		}
		for _, name := range unset {
			delete(m, quotaField+name)
		}
		after = m
		return nil
	}
	// The WATCH makes a revocation between the read and the write abort
	// the write, so that no quota field outlives its token's hash.
	for range 3 {
		err := s.rdb.Watch(ctx, update, key)
		if errors.Is(err, ErrTokenNotFound) {
			return TokenInfo{}, err
		}
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil {
				return TokenInfo{}, unavailable("update token quotas", err)
			}
			return tokenInfo(id, after)
		}
	}
	return TokenInfo{}, unavailable("update token quotas", redis.TxFailedErr)
}
