package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

func newStore(t *testing.T) (*metadata.Store, *testserver.Redis) {
	t.Helper()
	r := testserver.StartRedis(t, testserver.RedisOptions{AppendFsync: "always"})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{DedupWindow: time.Minute})
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, r
}

func topic(name string, partitions int) metadata.Topic {
	return metadata.Topic{Name: name, ID: name + "-id", Partitions: partitions, CreatedMS: 1}
}

func mustCreate(t *testing.T, s *metadata.Store, tp metadata.Topic) {
	t.Helper()
	if err := s.CreateTopic(t.Context(), tp); err != nil {
		t.Fatal(err)
	}
}

func TestTopicRegistry(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	mustCreate(t, s, topic("orders", 8))
	mustCreate(t, s, metadata.Topic{Name: "audit.log-1", ID: "x", Partitions: 1, RetentionMS: 3600000, CreatedMS: 5})
	if err := s.CreateTopic(ctx, topic("orders", 3)); !errors.Is(err, metadata.ErrTopicExists) {
		t.Fatalf("second create: err = %v, want ErrTopicExists", err)
	}
	got, err := s.Topic(ctx, "orders")
	if err != nil || got != topic("orders", 8) {
		t.Fatalf("Topic(orders) = %+v, %v", got, err)
	}
	all, err := s.Topics(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "audit.log-1" || all[1].Name != "orders" || all[0].RetentionMS != 3600000 {
		t.Fatalf("Topics = %+v, %v", all, err)
	}
	for _, bad := range []metadata.Topic{
		{Name: "", ID: "x", Partitions: 1},
		{Name: "sp ace", ID: "x", Partitions: 1},
		{Name: "t", ID: "x", Partitions: 0},
		{Name: "t", ID: "x", Partitions: metadata.MaxPartitions + 1},
		{Name: "t", ID: "", Partitions: 1},
		{Name: "t", ID: "x", Partitions: 1, RetentionMS: -1},
	} {
		if err := s.CreateTopic(ctx, bad); err == nil {
			t.Errorf("CreateTopic(%+v) succeeded", bad)
		}
	}
	if err := s.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Topic(ctx, "orders"); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("Topic after delete: err = %v", err)
	}
	if err := s.DeleteTopic(ctx, "orders"); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("second delete: err = %v", err)
	}
	if all, _ := s.Topics(ctx); len(all) != 1 {
		t.Fatalf("Topics after delete = %+v", all)
	}
}

func TestCommitAssignsContiguousOffsets(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	tp := topic("orders", 4)
	mustCreate(t, s, tp)
	res, err := s.Commit(ctx, tp, "chunk-1", []metadata.Batch{
		{Partition: 0, Records: 3, Offset: 100, Length: 50},
		{Partition: 2, Records: 5, Offset: 150, Length: 70},
		{Partition: 0, Records: 2, Offset: 220, Length: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.BaseOffsets) != "[0 0 3]" || res.HighWatermarks[0] != 5 || res.HighWatermarks[2] != 5 {
		t.Fatalf("first commit = %+v", res)
	}
	res, err = s.Commit(ctx, tp, "chunk-2", []metadata.Batch{{Partition: 0, Records: 4, Offset: 40, Length: 10}})
	if err != nil || fmt.Sprint(res.BaseOffsets) != "[5]" {
		t.Fatalf("second commit = %+v, %v", res, err)
	}
	// A retried commit returns the first answer and appends nothing.
	again, err := s.Commit(ctx, tp, "chunk-1", []metadata.Batch{
		{Partition: 0, Records: 3, Offset: 100, Length: 50},
		{Partition: 2, Records: 5, Offset: 150, Length: 70},
		{Partition: 0, Records: 2, Offset: 220, Length: 30},
	})
	if err != nil || fmt.Sprint(again.BaseOffsets) != "[0 0 3]" {
		t.Fatalf("retried commit = %+v, %v", again, err)
	}
	_, stats, err := s.PartitionStats(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if want := "[{0 0 9 90} {1 0 0 0} {2 0 5 70} {3 0 0 0}]"; fmt.Sprint(stats) != want {
		t.Fatalf("stats = %v, want %s", stats, want)
	}

	entries, st, err := s.Lookup(ctx, "orders", 0, 4, 10)
	if err != nil || st.HighWatermark != 9 {
		t.Fatalf("lookup: %v, %+v", err, st)
	}
	want := []metadata.IndexEntry{
		{BaseOffset: 3, Records: 2, ChunkID: "chunk-1", Offset: 220, Length: 30},
		{BaseOffset: 5, Records: 4, ChunkID: "chunk-2", Offset: 40, Length: 10},
	}
	if fmt.Sprint(entries) != fmt.Sprint(want) {
		t.Fatalf("lookup at 4 = %+v, want %+v", entries, want)
	}
	if entries, _, err := s.Lookup(ctx, "orders", 0, 9, 10); err != nil || len(entries) != 0 {
		t.Fatalf("lookup at the high watermark = %v, %v; want no entries", entries, err)
	}
	for _, off := range []int64{-1, 10} {
		if _, _, err := s.Lookup(ctx, "orders", 0, off, 1); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
			t.Errorf("lookup at %d: err = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	if _, _, err := s.Lookup(ctx, "orders", 4, 0, 1); !errors.Is(err, metadata.ErrPartitionNotFound) {
		t.Errorf("lookup of partition 4: err = %v", err)
	}
	if _, _, err := s.Lookup(ctx, "nope", 0, 0, 1); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Errorf("lookup of a missing topic: err = %v", err)
	}
}

func TestCommitRejectsWithoutChanges(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	tp := topic("t", 2)
	mustCreate(t, s, tp)
	_, err := s.Commit(ctx, tp, "c1", []metadata.Batch{
		{Partition: 0, Records: 1, Offset: 0, Length: 1},
		{Partition: 2, Records: 1, Offset: 1, Length: 1},
	})
	if !errors.Is(err, metadata.ErrPartitionNotFound) {
		t.Fatalf("commit to partition 2: err = %v", err)
	}
	stale := tp
	stale.ID = "old-incarnation"
	if _, err := s.Commit(ctx, stale, "c2", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}}); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("commit with a stale topic id: err = %v", err)
	}
	if _, err := s.Commit(ctx, topic("gone", 1), "c3", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}}); !errors.Is(err, metadata.ErrTopicNotFound) {
		t.Fatalf("commit to a missing topic: err = %v", err)
	}
	_, stats, _ := s.PartitionStats(ctx, "t")
	if stats[0].HighWatermark != 0 {
		t.Fatalf("a rejected commit changed offsets: %+v", stats)
	}
}

func TestIdempotencyKeys(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	tp := topic("t", 3)
	mustCreate(t, s, tp)
	first := []metadata.Batch{
		{Partition: 1, Records: 2, Offset: 0, Length: 10, IdempotencyKey: "req-1", Layout: "L1"},
		{Partition: 2, Records: 1, Offset: 10, Length: 10, IdempotencyKey: "req-1"},
		{Partition: 1, Records: 4, Offset: 20, Length: 10},
	}
	res, err := s.Commit(ctx, tp, "c1", first)
	if err != nil || fmt.Sprint(res.BaseOffsets) != "[0 0 2]" || len(res.Duplicates) != 0 {
		t.Fatalf("first commit = %+v, %v", res, err)
	}
	// The same request again, in another chunk and split differently
	// (its keyless records went elsewhere): nothing of it is indexed.
	res, err = s.Commit(ctx, tp, "c2", []metadata.Batch{
		{Partition: 0, Records: 3, Offset: 0, Length: 10, IdempotencyKey: "req-1", Layout: "other"},
		{Partition: 0, Records: 1, Offset: 10, Length: 10, IdempotencyKey: "req-2", Layout: "L2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.BaseOffsets) != "[-1 0]" {
		t.Fatalf("duplicate commit bases = %v", res.BaseOffsets)
	}
	ans, ok := res.Duplicates["req-1"]
	if !ok || ans.Layout != "L1" || fmt.Sprint(ans.BaseOffsets) != "[0 0]" {
		t.Fatalf("duplicate answer = %+v (ok %v)", ans, ok)
	}
	_, stats, _ := s.PartitionStats(ctx, "t")
	if fmt.Sprint(stats) != "[{0 0 1 10} {1 0 6 20} {2 0 1 10}]" {
		t.Fatalf("stats after duplicate = %v", stats)
	}
	// After the topic is deleted and created again, old keys mean nothing.
	if err := s.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	tp2 := tp
	tp2.ID = "second-incarnation"
	mustCreate(t, s, tp2)
	res, err = s.Commit(ctx, tp2, "c3", first[:1])
	if err != nil || fmt.Sprint(res.BaseOffsets) != "[0]" || len(res.Duplicates) != 0 {
		t.Fatalf("commit to the new incarnation = %+v, %v", res, err)
	}
	for _, bad := range []string{"has space", "tab\tkey", string(make([]byte, 256))} {
		if _, err := s.Commit(ctx, tp2, "c4", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1, IdempotencyKey: bad}}); err == nil {
			t.Errorf("commit with idempotency key %q succeeded", bad)
		}
	}
}

func TestConcurrentCommitsNeverOverlap(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	tp := topic("busy", 2)
	mustCreate(t, s, tp)
	const writers, commits = 8, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for c := range commits {
				id := fmt.Sprintf("w%d-c%d", w, c)
				if _, err := s.Commit(ctx, tp, id, []metadata.Batch{
					{Partition: 0, Records: 1 + c%5, Offset: 0, Length: 1},
					{Partition: 1, Records: 2, Offset: 1, Length: 1},
				}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := int64(0)
	for c := range commits {
		want += int64(writers * (1 + c%5))
	}
	// Walk the whole index: entries must tile [0, hw) exactly.
	next := int64(0)
	for next < want {
		entries, st, err := s.Lookup(ctx, "busy", 0, next, 50)
		if err != nil {
			t.Fatal(err)
		}
		if st.HighWatermark != want {
			t.Fatalf("high watermark %d, want %d", st.HighWatermark, want)
		}
		for _, e := range entries {
			if e.BaseOffset != next {
				t.Fatalf("entry at %d, want %d: gap or overlap", e.BaseOffset, next)
			}
			next = e.NextOffset()
		}
	}
}

func TestSubscribeCommits(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	tp := topic("watched", 3)
	mustCreate(t, s, tp)
	sub, err := s.SubscribeCommits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	events := make(chan metadata.CommitEvent, 10)
	go sub.Run(ctx, func(e metadata.CommitEvent) { events <- e }, nil)
	if _, err := s.Commit(ctx, tp, "c1", []metadata.Batch{{Partition: 2, Records: 7, Offset: 0, Length: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		if e != (metadata.CommitEvent{Topic: "watched", Partition: 2, HighWatermark: 7}) {
			t.Fatalf("event = %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no commit event within 10s")
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	s, r := newStore(t)
	tp := topic("t", 1)
	mustCreate(t, s, tp)
	r.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := s.Commit(ctx, tp, "c1", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}}); !errors.Is(err, metadata.ErrUnavailable) {
		t.Fatalf("commit with Redis down: err = %v, want ErrUnavailable", err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// The AOF kept the topic, and the script is reloaded on demand.
	res, err := s.Commit(ctx, tp, "c1", []metadata.Batch{{Partition: 0, Records: 1, Offset: 0, Length: 1}})
	if err != nil || res.BaseOffsets[0] != 0 {
		t.Fatalf("commit after restart = %+v, %v", res, err)
	}
}
