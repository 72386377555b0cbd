package metadata_test

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
)

// The collector's state: marks keep the first time, the pending set is
// read oldest first below a time, unmarks remove, the cursor round-trips;
// on real Redis, whose TIME is the clock.
func TestGCState(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	now, err := s.Now(ctx)
	if err != nil || time.Since(now).Abs() > time.Minute {
		t.Fatalf("Now = %v, %v", now, err)
	}
	t0 := time.UnixMilli(1_000_000)
	if n, err := s.GCMark(ctx, t0, "chunks/a", "chunks/b"); err != nil || n != 2 {
		t.Fatalf("mark = %d, %v", n, err)
	}
	// A second mark keeps the first time and counts nothing new.
	if n, err := s.GCMark(ctx, t0.Add(time.Hour), "chunks/a", "topics/x/1.json"); err != nil || n != 1 {
		t.Fatalf("mark again = %d, %v", n, err)
	}
	due, err := s.GCPending(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(due) != 2 || due[0].Key != "chunks/a" || !due[0].Marked.Equal(t0) || due[1].Key != "chunks/b" {
		t.Fatalf("pending before t0+1m = %+v, %v", due, err)
	}
	if due, _ := s.GCPending(ctx, t0, 10); len(due) != 0 {
		t.Fatalf("pending before t0 (exclusive) = %+v", due)
	}
	if due, _ := s.GCPending(ctx, t0.Add(2*time.Hour), 1); len(due) != 1 {
		t.Fatalf("pending limited to 1 = %+v", due)
	}
	if err := s.GCUnmark(ctx, "chunks/a", "chunks/b"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.GCPendingCount(ctx); err != nil || n != 1 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if c, err := s.GCCursor(ctx); err != nil || c != "" {
		t.Fatalf("fresh cursor = %q, %v", c, err)
	}
	for _, want := range []string{"chunks/k", ""} {
		if err := s.SetGCCursor(ctx, want); err != nil {
			t.Fatal(err)
		}
		if c, err := s.GCCursor(ctx); err != nil || c != want {
			t.Fatalf("cursor = %q, %v; want %q", c, err, want)
		}
	}
}

// A commit marker outlives the commit age limit when the limit is longer
// than the marker's usual ten minutes: restore relies on it to never index
// again a chunk committed and trimmed before a checkpoint.
func TestCommitMarkerLivesAsLongAsCommitAge(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	now := time.UnixMilli(1_800_000_000_000)
	mr.SetTime(now)
	s := metadata.New(rdb, metadata.Options{MaxCommitAge: time.Hour})
	tp := metadata.Topic{Name: "t", ID: "t1", Partitions: 1, CreatedMS: 1}
	if err := s.CreateTopic(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
	gen, err := chunkid.NewGenerator("n1", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	id, _ := gen.New()
	if _, err := s.Commit(t.Context(), tp, id.String(), []metadata.Batch{{Partition: 0, Records: 1, Offset: 40, Length: 30}}); err != nil {
		t.Fatal(err)
	}
	if ttl := mr.TTL("mamba:{t}:chunk:" + id.String()); ttl < time.Hour {
		t.Fatalf("marker TTL %v, want at least the commit age limit 1h", ttl)
	}
}
