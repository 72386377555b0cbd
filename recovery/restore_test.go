package recovery_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testnode"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/miniostore"
	"github.com/mambamq/mamba/recovery"
)

// newBucket starts MinIO and returns a store on a fresh bucket.
func newBucket(t testing.TB) objectstore.Store {
	t.Helper()
	m := testserver.StartMinIO(t)
	bucket := m.CreateBucket(t, "mamba")
	store, err := miniostore.New(miniostore.Config{
		Endpoint: m.Endpoint, Bucket: bucket, PathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// newMeta starts a fresh Redis and returns a metadata store on it.
func newMeta(t testing.TB) *metadata.Store {
	t.Helper()
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return metadata.New(rdb, metadata.Options{})
}

// startNode runs an ingest node until the test ends.
// checkpointNow writes a checkpoint of meta to store, as node-a.
func checkpointNow(t *testing.T, meta *metadata.Store, store objectstore.Store) recovery.CheckpointInfo {
	t.Helper()
	ckpt, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "node-a"}, meta, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ckpt.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func startNode(t *testing.T, meta *metadata.Store, store objectstore.Store, id string) *ingest.Node {
	t.Helper()
	n := testnode.Run(t, ingest.Config{NodeID: id, FlushInterval: 10 * time.Millisecond}, meta, store, nil)
	return n
}

// acked is one acknowledged record.
type acked struct {
	topic     string
	partition int32
	offset    int64
	value     string
}

// producer produces through a node and remembers what was acknowledged.
type producer struct {
	t    *testing.T
	mu   sync.Mutex
	acks []acked
}

func (p *producer) produce(n *ingest.Node, topic string, values []string, idemKey string) []ingest.RecordResult {
	p.t.Helper()
	recs := make([]ingest.ProduceRecord, len(values))
	for i, v := range values {
		recs[i] = ingest.ProduceRecord{Value: []byte(v), Partition: ingest.AnyPartition}
		if i%2 == 0 {
			recs[i].Key = []byte("k-" + v)
		}
	}
	res, err := n.Produce(p.t.Context(), topic, recs, ingest.ProduceOptions{IdempotencyKey: idemKey})
	if err != nil {
		p.t.Fatalf("produce to %s: %v", topic, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range res {
		p.acks = append(p.acks, acked{topic, r.Partition, r.Offset, values[i]})
	}
	return res
}

// readAll reads every record of every topic through n.
func readAll(t *testing.T, n *ingest.Node) map[string]map[int32][]ingest.FetchedRecord {
	t.Helper()
	topics, err := n.ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[int32][]ingest.FetchedRecord{}
	for _, tc := range topics {
		desc, err := n.DescribeTopic(t.Context(), tc.Name)
		if err != nil {
			t.Fatal(err)
		}
		out[tc.Name] = map[int32][]ingest.FetchedRecord{}
		for _, ps := range desc.PartitionStats {
			for off := ps.LogStartOffset; off < ps.HighWatermark; {
				res, err := n.Fetch(t.Context(), ingest.FetchRequest{Topic: tc.Name, Partition: ps.Partition, Offset: off, MaxRecords: 50})
				if err != nil {
					t.Fatalf("fetch %s/%d at %d: %v", tc.Name, ps.Partition, off, err)
				}
				if len(res.Records) == 0 {
					t.Fatalf("fetch %s/%d at %d below high watermark %d returned nothing", tc.Name, ps.Partition, off, ps.HighWatermark)
				}
				out[tc.Name][ps.Partition] = append(out[tc.Name][ps.Partition], res.Records...)
				off = res.NextOffset
			}
		}
	}
	return out
}

// checkRestored checks that the records read are exactly the acknowledged
// ones, each once and in its partition, and that every record acknowledged
// before the checkpoint (fixed) is at the offset it was acknowledged at.
func checkRestored(t *testing.T, read map[string]map[int32][]ingest.FetchedRecord, acks, fixed []acked) {
	t.Helper()
	where := map[string]acked{}
	for _, a := range acks {
		if _, dup := where[a.value]; dup {
			t.Fatalf("value %q acknowledged twice", a.value)
		}
		where[a.value] = a
	}
	seen := map[string]bool{}
	for topic, parts := range read {
		for p, recs := range parts {
			for i, r := range recs {
				if r.Offset != int64(i) {
					t.Fatalf("%s/%d: record %d has offset %d", topic, p, i, r.Offset)
				}
				v := string(r.Value)
				a, ok := where[v]
				if !ok {
					t.Fatalf("%s/%d@%d holds %q, never acknowledged", topic, p, r.Offset, v)
				}
				if seen[v] {
					t.Fatalf("%q appears twice after the restore", v)
				}
				seen[v] = true
				if a.topic != topic || a.partition != p {
					t.Fatalf("%q is in %s/%d, was acknowledged in %s/%d", v, topic, p, a.topic, a.partition)
				}
				if want := "k-" + v; r.Key != nil && string(r.Key) != want {
					t.Fatalf("%q has key %q, want %q", v, r.Key, want)
				}
			}
		}
	}
	if len(seen) != len(acks) {
		t.Fatalf("%d records after the restore, %d acknowledged", len(seen), len(acks))
	}
	for _, a := range fixed {
		recs := read[a.topic][a.partition]
		if a.offset >= int64(len(recs)) || string(recs[a.offset].Value) != a.value {
			t.Fatalf("%q was at %s/%d@%d before the checkpoint and is not any more", a.value, a.topic, a.partition, a.offset)
		}
	}
}

// comparable returns what a snapshot holds that a replay must not change:
// everything but the time and the TTLs.
func comparable(snap *metadata.Snapshot) metadata.Snapshot {
	out := metadata.Snapshot{Groups: snap.Groups}
	for _, ts := range snap.Topics {
		c := ts
		c.Commits = slices.Clone(ts.Commits)
		for i := range c.Commits {
			c.Commits[i].TTL = 0
		}
		c.Idempotency = slices.Clone(ts.Idempotency)
		for i := range c.Idempotency {
			c.Idempotency[i].TTL = 0
		}
		out.Topics = append(out.Topics, c)
	}
	return out
}

func TestRestore(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newMeta(t)
	a := startNode(t, meta, store, "node-a")
	b := startNode(t, meta, store, "node-b")
	p := &producer{t: t}
	for _, tc := range []ingest.TopicConfig{{Name: "orders", Partitions: 4}, {Name: "audit", Partitions: 1}, {Name: "gone", Partitions: 2}} {
		if _, err := a.CreateTopic(ctx, tc); err != nil {
			t.Fatal(err)
		}
	}
	// A topic deleted before the checkpoint: its chunks are in the replay
	// window, and its records must not come back.
	gone := &producer{t: t}
	gone.produce(a, "gone", []string{"gone-1", "gone-2"}, "")
	if err := a.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	var firstKeyed []ingest.RecordResult
	for i := range 24 {
		n := a
		if i%2 == 1 {
			n = b
		}
		topic := "orders"
		if i%5 == 0 {
			topic = "audit"
		}
		values := make([]string, 1+i%3)
		for j := range values {
			values[j] = fmt.Sprintf("before-%d-%d", i, j)
		}
		key := ""
		if i%3 == 0 {
			key = fmt.Sprintf("req-before-%d", i)
		}
		res := p.produce(n, topic, values, key)
		if i == 3 {
			firstKeyed = res
		}
	}
	// A retry of a keyed request appends nothing.
	if again, err := b.Produce(ctx, "orders", []ingest.ProduceRecord{{Value: []byte("before-3-0"), Key: []byte("k-before-3-0"), Partition: ingest.AnyPartition}},
		ingest.ProduceOptions{IdempotencyKey: "req-before-3"}); err != nil || fmt.Sprint(again) != fmt.Sprint(firstKeyed) {
		t.Fatalf("retry before the checkpoint = %v, %v; first answer %v", again, err, firstKeyed)
	}

	joined, err := a.Join(ctx, ingest.JoinGroupRequest{Group: "billing", Topics: []string{"orders", "audit"}})
	if err != nil {
		t.Fatal(err)
	}
	assigned := joined.Assignments
	var commits []metadata.OffsetCommit
	var maxLease int64
	for _, as := range assigned {
		commits = append(commits, metadata.OffsetCommit{Topic: as.Topic, Partition: as.Partition, Offset: int64(as.Partition) + 1, Lease: as.Lease})
		maxLease = max(maxLease, as.Lease)
	}
	if err := a.CommitOffsets(ctx, "billing", joined.Member, joined.SessionKey, commits); err != nil {
		t.Fatal(err)
	}
	wantGroup, err := a.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}

	info := checkpointNow(t, meta, store)
	fixed := slices.Clone(p.acks)

	// After the checkpoint: more records, a new topic, a retry of a key
	// from before the checkpoint (a duplicate that must stay dropped), and
	// a key first used now.
	if _, err := b.CreateTopic(ctx, ingest.TopicConfig{Name: "late", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 18 {
		n := b
		if i%2 == 1 {
			n = a
		}
		topic := []string{"orders", "audit", "late"}[i%3]
		values := make([]string, 1+i%4)
		for j := range values {
			values[j] = fmt.Sprintf("after-%d-%d", i, j)
		}
		key := ""
		if i%4 == 0 {
			key = fmt.Sprintf("req-after-%d", i)
		}
		p.produce(n, topic, values, key)
	}
	if again, err := a.Produce(ctx, "orders", []ingest.ProduceRecord{{Value: []byte("before-3-0"), Key: []byte("k-before-3-0"), Partition: ingest.AnyPartition}},
		ingest.ProduceOptions{IdempotencyKey: "req-before-3"}); err != nil || fmt.Sprint(again) != fmt.Sprint(firstKeyed) {
		t.Fatalf("retry after the checkpoint = %v, %v; first answer %v", again, err, firstKeyed)
	}
	lateKeyed := []ingest.ProduceRecord{{Value: []byte("late-keyed-0"), Partition: 1}, {Value: []byte("late-keyed-1"), Partition: 1}}
	if _, err := b.Produce(ctx, "late", lateKeyed, ingest.ProduceOptions{IdempotencyKey: "req-late"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Produce(ctx, "late", lateKeyed, ingest.ProduceOptions{IdempotencyKey: "req-late"}); err != nil {
		t.Fatal(err)
	}
	p.acks = append(p.acks, acked{"late", 1, -1, "late-keyed-0"}, acked{"late", 1, -1, "late-keyed-1"})

	// A newer checkpoint that is corrupt.
	corruptKey := bucket.CheckpointKey(info.Time.Add(time.Second), "node-z")
	if err := store.Put(ctx, corruptKey, []byte("MMCP garbage")); err != nil {
		t.Fatal(err)
	}

	// Redis is lost: restore into a fresh one.
	fresh := newMeta(t)
	var progress []recovery.Progress
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{Progress: func(pr recovery.Progress) { progress = append(progress, pr) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore: %+v", sum)
	if sum.Checkpoint != info.Key || !sum.CheckpointTime.Equal(info.Time) {
		t.Errorf("restored from %s at %v, want %s at %v", sum.Checkpoint, sum.CheckpointTime, info.Key, info.Time)
	}
	if len(sum.CorruptCheckpoints) != 1 || sum.CorruptCheckpoints[0].Key != corruptKey || !errors.Is(sum.CorruptCheckpoints[0].Err, recovery.ErrCorruptCheckpoint) {
		t.Errorf("corrupt checkpoints = %+v", sum.CorruptCheckpoints)
	}
	if !sum.Since.Equal(info.Time.Add(-recovery.ReplayMargin)) {
		t.Errorf("replayed since %v, want checkpoint time - %v", sum.Since, recovery.ReplayMargin)
	}
	if sum.TopicsCreated != 1 || sum.Topics != 3 || sum.ChunksReplayed == 0 || sum.ChunksSkipped == 0 ||
		sum.BatchesDuplicate != 2 || sum.BatchesSkipped == 0 || sum.ChunksScanned != sum.ChunksListed ||
		sum.ChunksReplayed+sum.ChunksSkipped != sum.ChunksScanned {
		t.Errorf("summary = %+v", sum)
	}
	if last := progress[len(progress)-1]; last.Phase != recovery.PhaseReplay || last.Done != sum.ChunksScanned || last.Total != sum.ChunksScanned {
		t.Errorf("last progress = %+v", last)
	}

	c := startNode(t, fresh, store, "node-c")
	read := readAll(t, c)
	if _, ok := read["gone"]; ok {
		t.Fatal("deleted topic came back")
	}
	checkRestored(t, read, p.acks, fixed)

	// Replaying again changes nothing.
	before, err := fresh.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := recovery.Replay(ctx, store, fresh, sum.Since, recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.ChunksReplayed != 0 || stats.BatchesIndexed != 0 || stats.TopicsCreated != 0 || stats.ChunksSkipped != sum.ChunksScanned {
		t.Errorf("second replay = %+v", stats)
	}
	after, err := fresh.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if x, y := comparable(before), comparable(after); !reflect.DeepEqual(x, y) {
		t.Fatalf("second replay changed the store:\nbefore %+v\n after %+v", x, y)
	}

	// Group positions are back, and new leases exceed the old ones.
	gotGroup, err := c.DescribeGroup(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	committed := func(g ingest.GroupDescription) string {
		var s []string
		for _, o := range g.Offsets {
			s = append(s, fmt.Sprintf("%s/%d@%d", o.Topic, o.Partition, o.Committed))
		}
		return fmt.Sprint(s)
	}
	if got, want := committed(gotGroup), committed(wantGroup); got != want || len(wantGroup.Offsets) != 5 {
		t.Errorf("group offsets after restore = %s, want %s", got, want)
	}
	joined, err = c.Join(ctx, ingest.JoinGroupRequest{Group: "billing", Topics: []string{"orders", "audit"}})
	if err != nil {
		t.Fatal(err)
	}
	assigned = joined.Assignments
	for _, as := range assigned {
		if as.Lease <= maxLease {
			t.Errorf("lease %d after restore is not above %d", as.Lease, maxLease)
		}
	}

	// Keys are still remembered: from before the checkpoint with the first
	// answer, and from after it with the offsets the replay gave.
	if again, err := c.Produce(ctx, "orders", []ingest.ProduceRecord{{Value: []byte("before-3-0"), Key: []byte("k-before-3-0"), Partition: ingest.AnyPartition}},
		ingest.ProduceOptions{IdempotencyKey: "req-before-3"}); err != nil || fmt.Sprint(again) != fmt.Sprint(firstKeyed) {
		t.Errorf("retry after restore = %v, %v; first answer %v", again, err, firstKeyed)
	}
	again, err := c.Produce(ctx, "late", lateKeyed, ingest.ProduceOptions{IdempotencyKey: "req-late"})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		recs := read["late"][r.Partition]
		if r.Offset >= int64(len(recs)) || !bytes.Equal(recs[r.Offset].Value, lateKeyed[i].Value) {
			t.Errorf("retry of a replayed key answered %v, which does not hold %q", r, lateKeyed[i].Value)
		}
	}
	if n := len(readAll(t, c)["late"][1]); n != len(read["late"][1]) {
		t.Errorf("retry of a replayed key appended: %d records, was %d", n, len(read["late"][1]))
	}

	// A second restore refuses the store it made, unless forced.
	if _, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{}); !errors.Is(err, metadata.ErrNotEmpty) {
		t.Fatalf("second restore without Force: err = %v, want ErrNotEmpty", err)
	}
	forced, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if forced.KeysWiped == 0 || forced.Checkpoint != info.Key || forced.RecordsIndexed != sum.RecordsIndexed {
		t.Errorf("forced restore = %+v", forced)
	}
	checkRestored(t, readAll(t, c), p.acks, fixed)
}

// Without any checkpoint, restore replays every chunk.
func TestRestoreWithoutCheckpoint(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newMeta(t)
	a := startNode(t, meta, store, "node-a")
	p := &producer{t: t}
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 3, RetentionMS: 3_600_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "empty", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p.produce(a, "orders", []string{fmt.Sprintf("v-%d-0", i), fmt.Sprintf("v-%d-1", i)}, fmt.Sprintf("req-%d", i))
	}
	// A retry: a duplicate in the bucket that must stay unindexed.
	if _, err := a.Produce(ctx, "orders", []ingest.ProduceRecord{{Value: []byte("v-3-0"), Partition: ingest.AnyPartition}},
		ingest.ProduceOptions{IdempotencyKey: "req-3"}); err != nil {
		t.Fatal(err)
	}
	want, err := meta.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}

	fresh := newMeta(t)
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoint != "" || !sum.Since.IsZero() || sum.TopicsCreated != 2 || sum.RecordsIndexed != len(p.acks) || sum.BatchesDuplicate != 1 {
		t.Errorf("summary = %+v", sum)
	}
	got, err := fresh.Topics(ctx)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("topics after restore = %+v, %v; want %+v", got, err, want)
	}
	// One node committed its chunks in id order, so replaying in id order
	// gives every record its original offset.
	checkRestored(t, readAll(t, startNode(t, fresh, store, "node-b")), p.acks, p.acks)
}

// A topic deleted and created again after the checkpoint: the restore
// holds the new incarnation, with only its own records.
func TestRestoreRecreatedTopic(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newMeta(t)
	a := startNode(t, meta, store, "node-a")
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	old := &producer{t: t}
	old.produce(a, "orders", []string{"old-1", "old-2"}, "")
	ckpt, err := recovery.NewCheckpointer(recovery.CheckpointConfig{NodeID: "node-a"}, meta, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ckpt.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	old.produce(a, "orders", []string{"old-3"}, "")
	if err := a.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	// Creation times are in milliseconds: make sure the new incarnation's
	// is later than every chunk of the old one.
	for start := time.Now(); time.Since(start) < 5*time.Millisecond; {
	}
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	p := &producer{t: t}
	p.produce(a, "orders", []string{"new-1", "new-2", "new-3"}, "req-new")
	want, err := meta.Topic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}

	fresh := newMeta(t)
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.TopicsReplaced != 1 || sum.RecordsIndexed != 3 {
		t.Errorf("summary = %+v", sum)
	}
	got, err := fresh.Topic(ctx, "orders")
	if err != nil || got != want {
		t.Fatalf("topic after restore = %+v, %v; want %+v", got, err, want)
	}
	checkRestored(t, readAll(t, startNode(t, fresh, store, "node-b")), p.acks, p.acks)
}

// Corrupt and foreign objects in the bucket are reported and skipped.
func TestRestoreSkipsDamage(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newMeta(t)
	a := startNode(t, meta, store, "node-a")
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	p := &producer{t: t}
	p.produce(a, "orders", []string{"one"}, "")
	for key, data := range map[string][]byte{
		"chunks/not-a-chunk-id":                              []byte("x"),
		"chunks/01JD3V8Q3E5Z4W9K2M7N6P0R1S-broken":           []byte("MMBC but not a chunk at all, not one bit"),
		"chunks/01JD3V8Q3E5Z4W9K2M7N6P0R1T-empty":            {},
		"topics/orders/not-json.json":                        []byte("{"),
		"topics/orders/misnamed.json":                        []byte(`{"name":"other","id":"misnamed","partitions":1,"created_ms":1}`),
		bucket.CheckpointKey(time.Now().Add(time.Hour), "z"): []byte("MMCP"),
		"checkpoints/not-a-checkpoint":                       []byte("x"),
	} {
		if err := store.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	fresh := newMeta(t)
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.ChunksUnreadable != 2 || len(sum.CorruptCheckpoints) != 1 || sum.RecordsIndexed != 1 || len(sum.Warnings) < 5 {
		t.Errorf("summary = %+v", sum)
	}
	checkRestored(t, readAll(t, startNode(t, fresh, store, "node-b")), p.acks, p.acks)
	if keys := slices.Sorted(maps.Keys(readAll(t, startNode(t, fresh, store, "node-c")))); fmt.Sprint(keys) != "[orders]" {
		t.Errorf("topics = %v", keys)
	}
}
