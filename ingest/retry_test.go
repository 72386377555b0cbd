package ingest

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// retryUntil retries what the predicate allows (nil: everything) until
// the deadline, never waiting past it, and stops at once on an error the
// predicate rejects.
func TestRetryUntil(t *testing.T) {
	transient, final := errors.New("transient"), errors.New("final")
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		deadline := start.Add(2 * time.Second)
		calls := 0
		err := retryUntil(t.Context(), deadline, func(ctx context.Context) error {
			calls++
			if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
				t.Errorf("attempt %d: context deadline %v, %v; want %v", calls, d, ok, deadline)
			}
			return transient
		}, nil)
		if !errors.Is(err, transient) || calls < 4 || time.Now().After(deadline) {
			t.Errorf("retried %d times until %v: %v; want several attempts within the deadline", calls, time.Since(start), err)
		}

		calls = 0
		err = retryUntil(t.Context(), time.Now().Add(time.Minute), func(context.Context) error {
			calls++
			if calls < 3 {
				return transient
			}
			return final
		}, func(err error) bool { return errors.Is(err, transient) })
		if !errors.Is(err, final) || calls != 3 {
			t.Errorf("%d calls, %v; want 3 calls ending in the final error", calls, err)
		}
	})
}
