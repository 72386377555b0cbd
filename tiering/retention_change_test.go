package tiering

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/metadata"
)

// An operator raises a topic's retention (PATCH) while a pass trims it:
// the next step decides by the new retention, not by the one the pass read
// at its start.
func TestRetentionStopsWhenRetentionIsRaisedMidPass(t *testing.T) {
	for _, c := range []struct {
		name   string
		ms     int64 // the topic's retention at the start
		bytes  int64
		update metadata.TopicUpdate
	}{
		{"retention_ms turned off", time.Minute.Milliseconds(), 0, metadata.TopicUpdate{RetentionMS: ptr(int64(0))}},
		{"retention_ms raised", time.Minute.Milliseconds(), 0, metadata.TopicUpdate{RetentionMS: ptr(time.Hour.Milliseconds())}},
		{"retention_bytes raised", 0, 1, metadata.TopicUpdate{RetentionBytes: ptr(int64(1 << 40))}},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEngines(t, func(t *testing.T, e *retEnv) {
				ctx := t.Context()
				tp := e.topic("t", 1, c.ms, c.bytes)
				for i := range 5 { // 9, 8, 7, 6 and 5 minutes old
					e.commit(tp, e.now.Add(-9*time.Minute+time.Duration(i)*time.Minute), 1, 0)
				}
				r, _ := e.retention(1)
				steps := 0
				renew := func() error {
					steps++
					if steps == 2 { // after the first trim step
						if _, err := e.meta.UpdateTopic(ctx, "t", c.update); err != nil {
							t.Fatal(err)
						}
					}
					return nil
				}
				if err := r.Pass(ctx, renew); err != nil {
					t.Fatal(err)
				}
				if entries, _ := e.head("t", 0); len(entries) != 4 {
					t.Fatalf("%d of 5 entries left, want 4: only the step before the change trims", len(entries))
				}
				if got := testutil.ToFloat64(r.trimmedEntries); got != 1 {
					t.Fatalf("trimmed entries = %v, want 1", got)
				}
			})
		})
	}
}

func ptr[T any](v T) *T { return &v }

// Without a configured clock, retention measures ages by Redis's clock
// (the one commit and garbage collection use), not the lease holder's.
func TestRetentionMeasuresAgeByRedisClock(t *testing.T) {
	forEngines(t, func(t *testing.T, e *retEnv) {
		if e.mr == nil {
			t.Skip("the test moves Redis's clock, which only miniredis can do")
		}
		ctx := t.Context()
		tp := e.topic("t", 1, time.Hour.Milliseconds(), 0)
		e.commit(tp, time.Now(), 1, 0)
		e.commit(tp, time.Now(), 1, 0)
		r, err := NewRetention(RetentionConfig{}, e.meta, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Pass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if entries, _ := e.head("t", 0); len(entries) != 2 {
			t.Fatalf("%d of 2 entries left at Redis's time, want 2", len(entries))
		}
		e.mr.SetTime(time.Now().Add(2 * time.Hour)) // this node's clock stays behind
		if err := r.Pass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if entries, _ := e.head("t", 0); len(entries) != 0 {
			t.Fatalf("%d entries left two hours later by Redis's clock, want 0", len(entries))
		}
		if got := testutil.ToFloat64(r.logStartAge.WithLabelValues("t")); got != 0 {
			t.Fatalf("log start age of an empty topic = %v, want 0", got)
		}
	})
}
