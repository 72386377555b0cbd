// Package retry is the one retry policy of the server side: calls to the
// bucket and to Redis that fail transiently are repeated with exponential
// backoff and jitter until they succeed, fail for good, run out of attempts
// or run out of time.
//
// The wait before retry n is drawn uniformly from [b/2, b], where b is
// Base·2^(n-1) capped at Max ("equal jitter"): retries of many callers that
// failed together spread out instead of arriving together, and no wait is
// shorter than half the nominal backoff. A retry whose wait would end after
// the context's deadline is not made: the last error is returned at once
// rather than after a sleep that cannot help.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults for a zero Policy field.
const (
	// DefaultBase is the nominal wait before the first retry.
	DefaultBase = 25 * time.Millisecond
	// DefaultMax caps the nominal wait between two attempts.
	DefaultMax = time.Second
)

// Policy says how often and how long to retry. The zero Policy retries
// every error, without a limit on attempts, until the context ends.
type Policy struct {
	// Base is the nominal wait before the first retry; it doubles after
	// each retry up to Max. DefaultBase when zero.
	Base time.Duration
	// Max caps the nominal wait. DefaultMax when zero.
	Max time.Duration
	// Attempts bounds the calls, the first included; zero means no bound
	// (the context's deadline is then the only end).
	Attempts int
	// Retryable says whether an error is worth another attempt; nil means
	// every error is.
	Retryable func(error) bool
}

// Do calls fn until it returns nil or an error that is not retryable, the
// attempts are used up, or ctx ends (or its deadline is nearer than the
// next wait). It returns fn's last error, or nil; it never returns a
// context error fn did not return itself, so callers see what failed.
func (p Policy) Do(ctx context.Context, fn func(context.Context) error) error {
	base, limit := p.Base, p.Max
	if base <= 0 {
		base = DefaultBase
	}
	if limit <= 0 {
		limit = DefaultMax
	}
	backoff := min(base, limit)
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || (p.Retryable != nil && !p.Retryable(err)) || attempt == p.Attempts {
			return err
		}
		wait := Jitter(backoff)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, limit)
	}
}

// Jitter returns a wait drawn uniformly from [d/2, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
