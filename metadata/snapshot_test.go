package metadata_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// withoutTTLs returns a copy of snap with TTLs and the time cleared, for
// comparing snapshots taken at different moments.
func withoutTTLs(snap *metadata.Snapshot) metadata.Snapshot {
	out := metadata.Snapshot{Groups: snap.Groups}
	for _, ts := range snap.Topics {
		c := ts
		c.Commits = nil
		for _, m := range ts.Commits {
			m.TTL = 0
			c.Commits = append(c.Commits, m)
		}
		c.Idempotency = nil
		for _, r := range ts.Idempotency {
			r.TTL = 0
			c.Idempotency = append(c.Idempotency, r)
		}
		out.Topics = append(out.Topics, c)
	}
	return out
}

func TestSnapshotRoundTrip(t *testing.T) {
	src, _ := newStore(t)
	ctx := t.Context()
	orders := topic("orders", 3)
	mustCreate(t, src, orders)
	mustCreate(t, src, topic("empty", 2))
	if _, err := src.Commit(ctx, orders, "c1", []metadata.Batch{
		{Partition: 0, Records: 3, Offset: 10, Length: 5},
		{Partition: 2, Records: 1, Offset: 15, Length: 5, IdempotencyKey: "req-1", Layout: "2;0*1"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Commit(ctx, orders, "c2", []metadata.Batch{{Partition: 0, Records: 2, Offset: 10, Length: 9}}); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_000_000)
	as, err := src.JoinGroup(ctx, "billing", "m1", keyOf("m1"), []metadata.Topic{orders}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	var commits []metadata.OffsetCommit
	var lastLease int64 // the group's counter starts at Redis's TIME in µs
	for _, a := range as {
		lastLease = max(lastLease, a.Lease)
		commits = append(commits, metadata.OffsetCommit{Topic: a.Topic, Partition: a.Partition, Offset: int64(a.Partition) + 1, Lease: a.Lease})
	}
	if err := src.CommitOffsets(ctx, "billing", "m1", keyOf("m1"), commits, now); err != nil {
		t.Fatal(err)
	}

	snap, err := src.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(snap.Time); d < -time.Minute || d > time.Minute {
		t.Errorf("snapshot time %v is not about now", snap.Time)
	}
	if len(snap.Topics) != 2 || snap.Topics[0].Topic.Name != "empty" || snap.Topics[1].Topic != orders {
		t.Fatalf("topics = %+v", snap.Topics)
	}
	ts := snap.Topics[1]
	if got := fmt.Sprint(ts.Partitions); got != "[{0 0 5 [{0 3 c1 10 5} {3 2 c2 10 9}]} {1 0 0 []} {2 0 1 [{0 1 c1 15 5}]}]" {
		t.Errorf("partitions = %s", got)
	}
	if len(ts.Commits) != 2 || ts.Commits[0].ChunkID != "c1" || ts.Commits[1].ChunkID != "c2" {
		t.Errorf("commit markers = %+v", ts.Commits)
	}
	for _, m := range ts.Commits {
		if m.TTL <= 0 || m.TTL > 10*time.Minute {
			t.Errorf("marker %s TTL %v", m.ChunkID, m.TTL)
		}
	}
	if len(ts.Idempotency) != 1 || ts.Idempotency[0] != (metadata.IdempotencyRecord{TopicID: orders.ID, Key: "req-1", Value: "0|2;0*1", TTL: ts.Idempotency[0].TTL}) ||
		ts.Idempotency[0].TTL <= 0 || ts.Idempotency[0].TTL > time.Minute {
		t.Errorf("idempotency = %+v", ts.Idempotency)
	}
	if len(snap.Groups) != 1 || snap.Groups[0].Name != "billing" || snap.Groups[0].Lease != lastLease ||
		fmt.Sprint(snap.Groups[0].Offsets) != "[{orders 0 1} {orders 1 2} {orders 2 3}]" {
		t.Errorf("groups = %+v", snap.Groups)
	}

	dst, _ := newStore(t)
	if empty, err := dst.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("fresh IsEmpty = %v, %v", empty, err)
	}
	if err := dst.LoadSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	again, err := dst.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The lease counter is raised to the loading Redis's clock in µs.
	if len(again.Groups) != 1 || again.Groups[0].Lease < lastLease {
		t.Fatalf("loaded groups = %+v, want the lease counter at %d or above", again.Groups, lastLease)
	}
	again.Groups[0].Lease = lastLease
	if a, b := withoutTTLs(snap), withoutTTLs(again); !reflect.DeepEqual(a, b) {
		t.Fatalf("loaded snapshot differs:\n got %+v\nwant %+v", b, a)
	}
	for i, m := range again.Topics[1].Commits {
		if m.TTL <= 0 || m.TTL > snap.Topics[1].Commits[i].TTL {
			t.Errorf("loaded marker TTL %v, snapshot had %v", m.TTL, snap.Topics[1].Commits[i].TTL)
		}
	}

	// The loaded store works like the original: a retried commit returns
	// its first answer, a repeated key is a duplicate, new commits go on
	// from the high watermark, and new leases exceed the old ones.
	res, err := dst.Commit(ctx, orders, "c2", []metadata.Batch{{Partition: 0, Records: 2, Offset: 10, Length: 9}})
	if err != nil || fmt.Sprint(res.BaseOffsets) != "[3]" {
		t.Errorf("retried commit after load = %+v, %v", res, err)
	}
	res, err = dst.Commit(ctx, orders, "c3", []metadata.Batch{
		{Partition: 2, Records: 1, Offset: 1, Length: 1, IdempotencyKey: "req-1"},
		{Partition: 0, Records: 1, Offset: 2, Length: 1},
	})
	if err != nil || fmt.Sprint(res.BaseOffsets) != "[-1 5]" || fmt.Sprint(res.Duplicates["req-1"]) != "{2;0*1 [0]}" {
		t.Errorf("commit after load = %+v, %v", res, err)
	}
	entries, _, err := dst.Lookup(ctx, "orders", 0, 4, 10)
	if err != nil || len(entries) != 2 || entries[0].ChunkID != "c2" || entries[1].ChunkID != "c3" {
		t.Errorf("lookup after load = %+v, %v", entries, err)
	}
	as, err = dst.JoinGroup(ctx, "billing", "m2", keyOf("m2"), []metadata.Topic{orders}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Lease <= lastLease || a.CommittedOffset != int64(a.Partition)+1 {
			t.Errorf("assignment after load = %+v", a)
		}
	}

	if err := dst.LoadSnapshot(ctx, snap); !errors.Is(err, metadata.ErrNotEmpty) {
		t.Fatalf("second load: err = %v, want ErrNotEmpty", err)
	}
	n, err := dst.Wipe(ctx)
	if err != nil || n == 0 {
		t.Fatalf("Wipe = %d, %v", n, err)
	}
	if empty, err := dst.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("IsEmpty after wipe = %v, %v", empty, err)
	}
}

func TestIsEmptyIgnoresOtherPrefixes(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	a := metadata.New(rdb, metadata.Options{Prefix: "a*"})
	b := metadata.New(rdb, metadata.Options{Prefix: "ab"})
	mustCreate(t, b, topic("orders", 1))
	if err := rdb.Set(t.Context(), "unrelated", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if empty, err := a.IsEmpty(t.Context()); err != nil || !empty {
		t.Fatalf("IsEmpty(a*) = %v, %v; a glob in the prefix must be literal", empty, err)
	}
	if n, err := a.Wipe(t.Context()); err != nil || n != 0 {
		t.Fatalf("Wipe(a*) = %d, %v", n, err)
	}
	if empty, err := b.IsEmpty(t.Context()); err != nil || empty {
		t.Fatalf("IsEmpty(ab) = %v, %v", empty, err)
	}
}

func TestSnapshotValidate(t *testing.T) {
	good := metadata.TopicSnapshot{Topic: topic("t", 1), Partitions: []metadata.PartitionSnapshot{{HighWatermark: 1,
		Index: []metadata.IndexEntry{{Records: 1, ChunkID: "c", Offset: 1, Length: 1}}}}}
	if err := (&metadata.Snapshot{Topics: []metadata.TopicSnapshot{good}}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := func(f func(*metadata.TopicSnapshot)) *metadata.Snapshot {
		ts := good
		ts.Partitions = []metadata.PartitionSnapshot{good.Partitions[0]}
		ts.Partitions[0].Index = append([]metadata.IndexEntry(nil), good.Partitions[0].Index...)
		f(&ts)
		return &metadata.Snapshot{Topics: []metadata.TopicSnapshot{ts}}
	}
	for name, snap := range map[string]*metadata.Snapshot{
		"partition count": bad(func(ts *metadata.TopicSnapshot) { ts.Topic.Partitions = 2 }),
		"partition order": bad(func(ts *metadata.TopicSnapshot) { ts.Partitions[0].Partition = 1 }),
		"high watermark":  bad(func(ts *metadata.TopicSnapshot) { ts.Partitions[0].HighWatermark = -1 }),
		"entry records":   bad(func(ts *metadata.TopicSnapshot) { ts.Partitions[0].Index[0].Records = 0 }),
		"entry chunk":     bad(func(ts *metadata.TopicSnapshot) { ts.Partitions[0].Index[0].ChunkID = "a|b" }),
		"marker chunk":    bad(func(ts *metadata.TopicSnapshot) { ts.Commits = []metadata.CommitMarker{{ChunkID: ""}} }),
		"idempotency key": bad(func(ts *metadata.TopicSnapshot) {
			ts.Idempotency = []metadata.IdempotencyRecord{{TopicID: "x", Key: "a b"}}
		}),
		"topic name":       bad(func(ts *metadata.TopicSnapshot) { ts.Topic.Name = "a b" }),
		"duplicate topics": {Topics: []metadata.TopicSnapshot{good, good}},
		"group name":       {Groups: []metadata.GroupSnapshot{{Name: "a b"}}},
		"group offset":     {Groups: []metadata.GroupSnapshot{{Name: "g", Offsets: []metadata.GroupOffset{{Topic: "t", Partition: -1}}}}},
	} {
		if err := snap.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, snap)
		}
	}
}

// TestLoadSnapshotLarge loads a snapshot with many index entries and
// prints how long it took.
func TestLoadSnapshotLarge(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	const partitions, perPartition = 8, 2500
	ts := metadata.TopicSnapshot{Topic: topic("big", partitions)}
	for p := range partitions {
		ps := metadata.PartitionSnapshot{Partition: int32(p), HighWatermark: 3 * perPartition}
		for i := range perPartition {
			ps.Index = append(ps.Index, metadata.IndexEntry{BaseOffset: int64(3 * i), Records: 3,
				ChunkID: fmt.Sprintf("01JD3V8Q3E5Z4W9K2M7N6P%04d-node", i), Offset: 100, Length: 50})
		}
		ts.Partitions = append(ts.Partitions, ps)
	}
	for i := range 2000 {
		ts.Commits = append(ts.Commits, metadata.CommitMarker{ChunkID: fmt.Sprintf("c%04d", i), Result: "0\n0:3", TTL: time.Minute})
	}
	snap := &metadata.Snapshot{Topics: []metadata.TopicSnapshot{ts}}
	start := time.Now()
	if err := s.LoadSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	start = time.Now()
	again, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d index entries and %d markers in %v, read them back in %v",
		partitions*perPartition, len(ts.Commits), loaded, time.Since(start))
	if a, b := withoutTTLs(snap), withoutTTLs(again); !reflect.DeepEqual(a, b) {
		t.Fatal("snapshot read back differs from the one loaded")
	}
	entries, _, err := s.Lookup(ctx, "big", 7, 3*perPartition-1, 1)
	if err != nil || len(entries) != 1 || entries[0].BaseOffset != 3*perPartition-3 {
		t.Fatalf("lookup = %+v, %v", entries, err)
	}
}

func TestJobLease(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	a := s.JobLease("checkpoint", "node-a", time.Minute)
	b := s.JobLease("checkpoint", "node-b", time.Minute)
	mustHold := func(l *metadata.JobLease, want bool) {
		t.Helper()
		got, err := l.Acquire(ctx)
		if err != nil || got != want {
			t.Fatalf("Acquire = %v, %v; want %v", got, err, want)
		}
	}
	mustHold(a, true)
	mustHold(a, true) // renewal
	mustHold(b, false)
	if h, err := s.JobHolder(ctx, "checkpoint"); err != nil || h != "node-a" {
		t.Fatalf("JobHolder = %q, %v", h, err)
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	mustHold(b, false) // b's release did not free a's lease
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	mustHold(b, true)
	mustHold(s.JobLease("compaction", "node-a", time.Minute), true) // another job

	// A lease that is not renewed expires and passes on.
	short := s.JobLease("short", "node-a", 50*time.Millisecond)
	mustHold(short, true)
	other := s.JobLease("short", "node-b", time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := other.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired lease was never taken over")
		}
	}

	if _, ok, err := s.JobLastRun(ctx, "checkpoint"); err != nil || ok {
		t.Fatalf("JobLastRun before any run = %v, %v", ok, err)
	}
	t1 := time.UnixMilli(1_700_000_000_000)
	for _, at := range []time.Time{t1, t1.Add(-time.Hour)} {
		if err := s.SetJobLastRun(ctx, "checkpoint", at); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := s.JobLastRun(ctx, "checkpoint"); err != nil || !ok || !got.Equal(t1) {
		t.Fatalf("JobLastRun = %v, %v, %v; want %v (an earlier time must not go back)", got, ok, err, t1)
	}
}
