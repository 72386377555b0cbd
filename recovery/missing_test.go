package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/recovery"
)

// produceEach produces the values to partition 0 of topic, one request
// (and so one chunk) each.
func produceEach(t *testing.T, n *ingest.Node, topic string, vals ...string) {
	t.Helper()
	for _, v := range vals {
		if _, err := n.Produce(t.Context(), topic, []ingest.ProduceRecord{{Value: []byte(v)}}, ingest.ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// A replica bucket holds the newest checkpoint but not yet the newest
// chunk it names (replication does not keep write order). Restore must
// not drop the partition's history, which the collector would then delete:
// it fails, naming the chunk, and changes nothing (not even with Force);
// once the chunk arrives, it restores every record.
func TestRestoreRefusesCheckpointNamingMissingChunk(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newGCMeta(t)
	a := startGCNode(t, meta, store, "node-a")
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 6 {
		want = append(want, fmt.Sprint("v", i))
	}
	produceEach(t, a, "t", want...)
	writeCheckpoint(t, meta, store)
	entries, _, err := meta.Head(ctx, "t", 0, 100)
	if err != nil || len(entries) != len(want) {
		t.Fatalf("head: %d entries, %v", len(entries), err)
	}
	late := bucket.ChunkKey(entries[len(entries)-1].ChunkID)
	data, err := store.Get(ctx, late)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, late); err != nil {
		t.Fatal(err)
	}

	fresh := newGCMeta(t)
	_, err = recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{})
	var missing *recovery.MissingChunksError
	if !errors.As(err, &missing) || missing.Count != 1 || len(missing.Keys) != 1 || missing.Keys[0] != late ||
		!strings.Contains(err.Error(), late) || !strings.Contains(err.Error(), "--allow-missing-chunks") {
		t.Fatalf("restore with a chunk not replicated yet: %v", err)
	}
	if empty, err := fresh.IsEmpty(ctx); err != nil || !empty {
		t.Fatalf("store after the refused restore: empty %v, %v", empty, err)
	}
	// A forced restore into a store with keys refuses before wiping them.
	if _, err := recovery.Restore(ctx, store, meta, recovery.RestoreOptions{Force: true}); !errors.Is(err, recovery.ErrMissingChunks) {
		t.Fatalf("forced restore: %v", err)
	}
	if tp, err := meta.Topic(ctx, "t"); err != nil || tp.Name != "t" {
		t.Fatalf("store after the refused forced restore: %+v, %v", tp, err)
	}

	// Replication catches up.
	if err := store.Put(ctx, late, data); err != nil {
		t.Fatal(err)
	}
	sum, err := recovery.Restore(ctx, store, fresh, recovery.RestoreOptions{})
	if err != nil || sum.ChunksMissing != 0 || sum.EntriesDropped != 0 {
		t.Fatalf("restore once replicated: %+v, %v", sum, err)
	}
	n := startGCNode(t, fresh, store, "reader")
	if lso, got := values(t, n, "t"); lso != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after restore: log start %d, %v; want 0, %v", lso, got, want)
	}
}

// chunkListCounter counts the chunk keys its store's listings return,
// passing ListAfter on to the store's own (MinIO's start-after).
type chunkListCounter struct {
	objectstore.Store
	listed atomic.Int64
}

func (s *chunkListCounter) List(ctx context.Context, prefix string) iter.Seq2[objectstore.ObjectInfo, error] {
	return s.ListAfter(ctx, prefix, "")
}

func (s *chunkListCounter) ListAfter(ctx context.Context, prefix, after string) iter.Seq2[objectstore.ObjectInfo, error] {
	return func(yield func(objectstore.ObjectInfo, error) bool) {
		for info, err := range objectstore.ListAfter(ctx, s.Store, prefix, after) {
			if err == nil && strings.HasPrefix(info.Key, bucket.ChunkPrefix) {
				s.listed.Add(1)
			}
			if !yield(info, err) {
				return
			}
		}
	}
}

// Restore lists only the chunks from the oldest one the checkpoint names
// and those of the replay window, not the bucket's whole history (here:
// chunks of a day before, which nothing names any more).
func TestRestoreListsOnlyWhatItNeeds(t *testing.T) {
	ctx := t.Context()
	store := newBucket(t)
	meta := newGCMeta(t)
	a := startGCNode(t, meta, store, "node-a")
	if _, err := a.CreateTopic(ctx, ingest.TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	produceEach(t, a, "t", "a", "b", "c")
	writeCheckpoint(t, meta, store)
	const history = 60
	gen, err := chunkid.NewGenerator("old", func() time.Time { return time.Now().Add(-24 * time.Hour) })
	if err != nil {
		t.Fatal(err)
	}
	for range history {
		id, err := gen.New()
		if err != nil {
			t.Fatal(err)
		}
		if err := bucket.New(store).PutChunk(ctx, id, []byte("trimmed long ago")); err != nil {
			t.Fatal(err)
		}
	}
	counter := &chunkListCounter{Store: store}
	sum, err := recovery.Restore(ctx, counter, newGCMeta(t), recovery.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Three chunks for the missing check, at most three for the replay.
	if got := counter.listed.Load(); got > 6 || sum.ChunksListed != 3 {
		t.Errorf("restore listed %d chunk keys (replay %d); want at most 6, of %d in the bucket", got, sum.ChunksListed, history+3)
	}
}
