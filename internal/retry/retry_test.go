package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

var (
	errTransient = errors.New("transient")
	errFatal     = errors.New("fatal")
)

func TestDoRetriesUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		start := time.Now()
		err := Policy{Base: 10 * time.Millisecond, Max: 40 * time.Millisecond}.Do(t.Context(), func(context.Context) error {
			calls++
			if calls < 5 {
				return errTransient
			}
			return nil
		})
		if err != nil || calls != 5 {
			t.Fatalf("Do = %v after %d calls, want nil after 5", err, calls)
		}
		// Nominal waits 10, 20, 40, 40 ms; each jittered into [b/2, b].
		if took := time.Since(start); took < 55*time.Millisecond || took > 110*time.Millisecond {
			t.Errorf("four retries took %v, want between 55ms and 110ms", took)
		}
	})
}

func TestDoStops(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    Policy
		timeout   time.Duration
		errs      []error
		wantCalls int
		wantErr   error
	}{
		{"not retryable", Policy{Retryable: func(err error) bool { return err == errTransient }}, 0,
			[]error{errTransient, errFatal, nil}, 2, errFatal},
		{"attempts", Policy{Attempts: 3}, 0,
			[]error{errTransient, errTransient, errTransient, nil}, 3, errTransient},
		// Waits are jittered into [250ms, 500ms] then [500ms, 1s]: the first
		// always fits in 740ms, the second never fits in what is left.
		{"deadline before next wait", Policy{Base: 500 * time.Millisecond, Max: 2 * time.Second}, 740 * time.Millisecond,
			[]error{errTransient, errTransient, errTransient, nil}, 2, errTransient},
		{"first try succeeds", Policy{}, 0, []error{nil}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tc.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.timeout)
					defer cancel()
				}
				calls := 0
				err := tc.policy.Do(ctx, func(context.Context) error {
					err := tc.errs[calls]
					calls++
					return err
				})
				if !errors.Is(err, tc.wantErr) || calls != tc.wantCalls {
					t.Errorf("Do = %v after %d calls, want %v after %d", err, calls, tc.wantErr, tc.wantCalls)
				}
			})
		})
	}
}

func TestDoCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := Policy{Base: time.Hour, Max: time.Hour}.Do(ctx, func(context.Context) error {
			calls++
			if calls == 1 {
				go func() { time.Sleep(time.Second); cancel() }()
			}
			return errTransient
		})
		if !errors.Is(err, errTransient) || calls != 1 {
			t.Errorf("Do = %v after %d calls, want the transient error after 1", err, calls)
		}
	})
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if w := Jitter(100 * time.Millisecond); w < 50*time.Millisecond || w > 100*time.Millisecond {
			t.Fatalf("Jitter(100ms) = %v, want within [50ms, 100ms]", w)
		}
	}
	if w := Jitter(0); w != 0 {
		t.Errorf("Jitter(0) = %v, want 0", w)
	}
}
