package recovery_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testnode"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/recovery"
	"github.com/mambamq/mamba/tiering"
)

// gcCommitAge is short so that chunks become collectable within the test.
const gcCommitAge = 2 * time.Second

// newGCMeta starts a fresh Redis with the short commit age limit.
func newGCMeta(t *testing.T) *metadata.Store {
	t.Helper()
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return metadata.New(rdb, metadata.Options{MaxCommitAge: gcCommitAge})
}

func startGCNode(t *testing.T, meta *metadata.Store, store objectstore.Store, id string) *ingest.Node {
	t.Helper()
	n := testnode.Run(t, ingest.Config{NodeID: id, FlushInterval: 5 * time.Millisecond, WriteTimeout: gcCommitAge / 2}, meta, store, nil)
	return n
}

// writeCheckpoint writes a checkpoint of meta as the checkpointer does and
// returns its time.
func writeCheckpoint(t *testing.T, meta *metadata.Store, store objectstore.Store) time.Time {
	t.Helper()
	snap, err := meta.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data, err := recovery.EncodeCheckpoint(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.New(store).PutCheckpoint(t.Context(), snap.Time, "ckpt", data); err != nil {
		t.Fatal(err)
	}
	return snap.Time
}

// trimHead trims the first n index entries of topic's partition 0.
func trimHead(t *testing.T, meta *metadata.Store, topic string, n int) {
	t.Helper()
	tp, err := meta.Topic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	entries, _, err := meta.Head(t.Context(), topic, 0, n)
	if err != nil || len(entries) != n {
		t.Fatalf("head of %s: %d entries, %v", topic, len(entries), err)
	}
	if _, ok, err := meta.Trim(t.Context(), tp, 0, entries); err != nil || !ok {
		t.Fatalf("trim %s: %v %v", topic, ok, err)
	}
}

// values reads partition 0 of topic from its log start and returns the
// log start and the values.
func values(t *testing.T, n *ingest.Node, topic string) (int64, []string) {
	t.Helper()
	desc, err := n.DescribeTopic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	ps := desc.PartitionStats[0]
	var out []string
	for off := ps.LogStartOffset; off < ps.HighWatermark; {
		res, err := n.Fetch(t.Context(), ingest.FetchRequest{Topic: topic, Offset: off, MaxRecords: 50})
		if err != nil || len(res.Records) == 0 {
			t.Fatalf("fetch %s at %d: %d records, %v", topic, off, len(res.Records), err)
		}
		for _, r := range res.Records {
			out = append(out, string(r.Record.Value))
		}
		off = res.NextOffset
	}
	return ps.LogStartOffset, out
}

// Retention trims, the collector deletes (gated by a checkpoint newer than
// its marks), and then: a restore from the newest checkpoint gives back
// exactly the live records, trimmed ones not resurrected by replay; and a
// restore from the older checkpoint, which names collected chunks, fails
// unless missing chunks are allowed, and then moves the log start past
// them.
func TestRestoreAfterGC(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newGCMeta(t)
	a := startGCNode(t, meta, store, "node-a")
	for _, name := range []string{"old", "fresh"} {
		if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: name, Partitions: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range 8 { // one chunk each
		v := fmt.Sprintf("old-%d", i)
		if _, err := a.Produce(ctx, "old", []ingest.ProduceRecord{{Value: []byte(v)}}, ingest.ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	writeCheckpoint(t, meta, store) // the older checkpoint: names every chunk
	trimHead(t, meta, "old", 5)

	gc, err := tiering.NewCollector(tiering.GCConfig{Grace: time.Millisecond, CheckpointGate: true}, meta, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pass := func() tiering.GCStats {
		st, err := gc.RunPass(ctx, func() error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Poll until the trimmed chunks are past the commit age limit and
	// marked.
	deadline := time.Now().Add(15 * time.Second)
	for marked := 0; marked < 5; marked += pass().Marked {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 trimmed chunks marked", marked)
		}
	}
	if st := pass(); st.Deleted != 0 {
		t.Fatalf("deleted before a checkpoint newer than the marks: %+v", st)
	}
	// A topic trimmed just before the newest checkpoint, its chunks young
	// enough to be replayed: replay must not index the trimmed one again.
	for _, v := range []string{"fresh-0", "fresh-1"} {
		if _, err := a.Produce(ctx, "fresh", []ingest.ProduceRecord{{Value: []byte(v)}}, ingest.ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	trimHead(t, meta, "fresh", 1)
	ckpt := writeCheckpoint(t, meta, store)
	for deleted := 0; deleted < 5; {
		st := pass()
		deleted += st.Deleted
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 chunks deleted (last pass %+v)", deleted, st)
		}
	}

	check := func(sum recovery.RestoreSummary, fresh *metadata.Store, wantFresh string) {
		t.Helper()
		n := startGCNode(t, fresh, store, "reader-"+sum.Checkpoint[len(sum.Checkpoint)-10:])
		if lso, got := values(t, n, "old"); lso != 5 || fmt.Sprint(got) != fmt.Sprint(want[5:]) {
			t.Errorf("old after restore from %s: log start %d, %v; want 5, %v", sum.Checkpoint, lso, got, want[5:])
		}
		if _, got := values(t, n, "fresh"); fmt.Sprint(got) != wantFresh {
			t.Errorf("fresh after restore from %s: %v, want %s", sum.Checkpoint, got, wantFresh)
		}
	}
	fresh := newGCMeta(t)
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.CheckpointTime.Equal(ckpt) || sum.ChunksMissing != 0 || sum.BatchesIndexed != 0 {
		t.Errorf("restore from the newest checkpoint: %+v", sum)
	}
	check(sum, fresh, "[fresh-1]")

	// The newest checkpoint is damaged: restore falls back to the older
	// one, whose first five chunks are gone.
	cps, err := bucket.New(store).ListCheckpoints(ctx)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoints %v, %v", cps, err)
	}
	if err := store.Put(ctx, cps[1].Key, []byte("MMCP damaged")); err != nil {
		t.Fatal(err)
	}
	// By default that fails, naming the missing chunks, and leaves the
	// store empty.
	older := newGCMeta(t)
	_, err = recovery.Restore(ctx, store, older, recovery.RestoreOptions{})
	var missing *recovery.MissingChunksError
	if !errors.As(err, &missing) || !errors.Is(err, recovery.ErrMissingChunks) || missing.Count != 5 ||
		missing.Checkpoint != cps[0].Key || len(missing.Keys) != 5 || !strings.Contains(err.Error(), "--allow-missing-chunks") {
		t.Fatalf("restore from the older checkpoint without AllowMissingChunks: %v", err)
	}
	if empty, err := older.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("store after the refused restore: empty %v, %v", empty, err)
	}
	// Allowed, the entries up to the missing chunks count as trimmed.
	sum, err = recovery.Restore(ctx, store, older, recovery.RestoreOptions{AllowMissingChunks: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checkpoint != cps[0].Key || sum.ChunksMissing != 5 || sum.EntriesDropped != 5 || len(sum.CorruptCheckpoints) != 1 {
		t.Errorf("restore from the older checkpoint: %+v", sum)
	}
	// The older checkpoint predates fresh's trim: its records come back
	// as they were then (retention trims them again).
	check(sum, older, "[fresh-0 fresh-1]")
}
