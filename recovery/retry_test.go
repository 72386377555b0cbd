package recovery

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mambamq/mamba/objectstore"
)

// Restore's reads retry transient failures five times in all, backing off
// from 50ms, and give up at once on anything else.
func TestWithRetry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  int   // calls that fail before one succeeds
		err       error // what they fail with
		wantCalls int
		wantErr   bool
	}{
		{"transient then ok", 4, objectstore.Retryable(errors.New("503")), 5, false},
		{"transient for good", 10, objectstore.Retryable(errors.New("503")), 5, true},
		{"final", 10, fmt.Errorf("get: %w", objectstore.ErrNotExist), 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				start := time.Now()
				v, err := withRetry(t.Context(), func(context.Context) (int, error) {
					calls++
					if calls <= tc.failures {
						return 0, tc.err
					}
					return 42, nil
				})
				if calls != tc.wantCalls || (err != nil) != tc.wantErr || (err == nil && v != 42) {
					t.Errorf("%d calls, %v, %v; want %d calls, error %v", calls, v, err, tc.wantCalls, tc.wantErr)
				}
				if tc.wantErr && !errors.Is(err, tc.err) {
					t.Errorf("err = %v, want the last failure %v", err, tc.err)
				}
				// Four waits of 50, 100, 200 and 400ms nominal, each at
				// least half that: between 375ms and 750ms.
				if waited := time.Since(start); tc.wantCalls == 5 && (waited < 375*time.Millisecond || waited > 750*time.Millisecond) {
					t.Errorf("waited %v between five attempts, want 375ms to 750ms", waited)
				}
			})
		})
	}
}
