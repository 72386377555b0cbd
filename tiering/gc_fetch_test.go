package tiering_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/ingest"
	"github.com/mambamq/mamba/internal/tooling/testnode"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/tiering"
)

// These tests race garbage collection against readers on real nodes
// (miniredis on the real clock, a memory bucket).

// fetchCommitAge is short so that the tests' chunks become collectable
// quickly; nodes commit within milliseconds here.
const fetchCommitAge = time.Second

// gatedStore holds every GetRange until the test opens the gate, after
// announcing it on arrived.
type gatedStore struct {
	objectstore.Store
	mu      sync.Mutex
	arrived chan struct{}
	gate    chan struct{}
}

func (g *gatedStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	g.mu.Lock()
	arrived, gate := g.arrived, g.gate
	g.mu.Unlock()
	if gate != nil {
		arrived <- struct{}{}
		<-gate
	}
	return g.Store.GetRange(ctx, key, off, length)
}

func startNode(t *testing.T, cfg ingest.Config, meta *metadata.Store, store objectstore.Store) *ingest.Node {
	t.Helper()
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	cfg.WriteTimeout = fetchCommitAge / 2
	n := testnode.Run(t, cfg, meta, store, nil)
	return n
}

// readerConfig keeps (almost) nothing in the caches, so that every fetch
// GETs from the bucket.
func readerConfig(id string) ingest.Config {
	return ingest.Config{NodeID: id, CacheBytes: 1, CatchUpCacheBytes: 1, ReadAheadBytes: 1}
}

func newMiniMeta(t *testing.T) *metadata.Store {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return metadata.New(rdb, metadata.Options{MaxCommitAge: fetchCommitAge})
}

// produceChunks produces n records to partition 0, one per chunk, and
// returns their values by offset.
func produceChunks(t *testing.T, w *ingest.Node, topic string, n int) map[int64]string {
	t.Helper()
	want := map[int64]string{}
	for i := range n {
		v := fmt.Sprintf("value-%d", i)
		res, err := w.Produce(t.Context(), topic, []ingest.ProduceRecord{{Value: []byte(v), Partition: 0}}, ingest.ProduceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[res[0].Offset] = v
	}
	return want
}

// trimTo trims partition 0 of topic until its log start is at least lso.
func trimTo(t *testing.T, meta *metadata.Store, topic string, lso int64) {
	t.Helper()
	tp, err := meta.Topic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for {
		entries, _, err := meta.Head(t.Context(), topic, 0, metadata.MaxTrimEntries)
		if err != nil {
			t.Fatal(err)
		}
		var head []metadata.IndexEntry
		for _, e := range entries {
			if e.NextOffset() > lso {
				break
			}
			head = append(head, e)
		}
		if len(head) == 0 {
			return
		}
		if _, _, err := meta.Trim(t.Context(), tp, 0, head); err != nil {
			t.Fatal(err)
		}
	}
}

// A fetch whose chunk is trimmed and deleted between its lookup and its
// GET is answered offset_out_of_range; a missing chunk above the log
// start is a real error, not out of range.
func TestFetchOfCollectedChunkIsOutOfRange(t *testing.T) {
	meta := newMiniMeta(t)
	mem := objectstore.NewMemory()
	w := startNode(t, ingest.Config{NodeID: "writer"}, meta, mem)
	if _, err := w.CreateTopic(t.Context(), ingest.TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	produceChunks(t, w, "t", 3)
	gated := &gatedStore{Store: mem, arrived: make(chan struct{}), gate: make(chan struct{})}
	r := startNode(t, readerConfig("reader"), meta, gated)

	entries, _, err := meta.Head(t.Context(), "t", 0, 3)
	if err != nil || len(entries) != 3 {
		t.Fatalf("head: %v %v", entries, err)
	}
	type answer struct {
		res ingest.FetchResult
		err error
	}
	fetch := func(off int64) chan answer {
		ch := make(chan answer, 1)
		go func() {
			res, err := r.Fetch(t.Context(), ingest.FetchRequest{Topic: "t", Offset: off, MaxRecords: 1})
			ch <- answer{res, err}
		}()
		return ch
	}
	got := fetch(0)
	<-gated.arrived // looked up, reading
	trimTo(t, meta, "t", 1)
	if err := bucket.New(mem).DeleteChunk(t.Context(), entries[0].ChunkID); err != nil {
		t.Fatal(err)
	}
	gated.mu.Lock()
	gate := gated.gate
	gated.gate = nil
	gated.mu.Unlock()
	close(gate)
	a := <-got
	if !errors.Is(a.err, ingest.ErrOffsetOutOfRange) || a.res.LogStartOffset != 1 {
		t.Fatalf("fetch of a collected chunk: %v (log start %d), want offset out of range at log start 1", a.err, a.res.LogStartOffset)
	}

	// A chunk missing while still indexed is damage, reported as such.
	if err := bucket.New(mem).DeleteChunk(t.Context(), entries[1].ChunkID); err != nil {
		t.Fatal(err)
	}
	a = <-fetch(1)
	if a.err == nil || errors.Is(a.err, ingest.ErrOffsetOutOfRange) || !errors.Is(a.err, objectstore.ErrNotExist) {
		t.Fatalf("fetch of an indexed missing chunk: %v, want a not-exist error", a.err)
	}
	a = <-fetch(2)
	if a.err != nil || len(a.res.Records) != 1 || string(a.res.Records[0].Record.Value) != "value-2" {
		t.Fatalf("fetch of a live chunk: %+v %v", a.res, a.err)
	}
}

// Readers keep reading while retention trims and the collector deletes:
// every record returned is exactly what was produced at its offset, every
// error is offset_out_of_range below the log start, and in the end every
// trimmed chunk is gone and every live one readable.
func TestGCRacesFetches(t *testing.T) {
	meta := newMiniMeta(t)
	mem := objectstore.NewMemory()
	w := startNode(t, ingest.Config{NodeID: "writer"}, meta, mem)
	if _, err := w.CreateTopic(t.Context(), ingest.TopicConfig{Name: "t", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	const total, keep = 60, 10
	want := produceChunks(t, w, "t", total)
	r := startNode(t, readerConfig("reader"), meta, mem)
	gc, err := tiering.NewCollector(tiering.GCConfig{Grace: time.Millisecond, Batch: 7, Concurrency: 4}, meta, mem, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(t.Context())
	var reads, outOfRange atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for ctx.Err() == nil {
				off := rng.Int64N(total)
				res, err := r.Fetch(ctx, ingest.FetchRequest{Topic: "t", Offset: off, MaxRecords: 1 + rng.IntN(5)})
				switch {
				case ctx.Err() != nil:
					return
				case errors.Is(err, ingest.ErrOffsetOutOfRange):
					if res.LogStartOffset <= off {
						t.Errorf("offset %d out of range with log start %d", off, res.LogStartOffset)
					}
					outOfRange.Add(1)
				case err != nil:
					t.Errorf("fetch at %d: %v", off, err)
				default:
					for _, rec := range res.Records {
						if string(rec.Record.Value) != want[rec.Offset] {
							t.Errorf("offset %d: got %q, want %q", rec.Offset, rec.Record.Value, want[rec.Offset])
						}
					}
					reads.Add(1)
				}
			}
		})
	}

	// Trim step by step and collect as we go, until every trimmed chunk is
	// deleted (chunks become collectable once older than the commit age
	// limit, so this polls under a deadline).
	deadline := time.Now().Add(15 * time.Second)
	lso := int64(0)
	for {
		if lso < total-keep {
			lso = min(lso+5, total-keep)
			trimTo(t, meta, "t", lso)
		}
		if _, err := gc.RunPass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, err := range bucket.New(mem).ListChunks(ctx, time.Time{}) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if lso == total-keep && n == keep {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d chunks left, want %d", n, keep)
		}
	}
	stop()
	wg.Wait()
	if reads.Load() == 0 || outOfRange.Load() == 0 {
		t.Fatalf("readers saw %d successful fetches and %d out of range; the race did not happen", reads.Load(), outOfRange.Load())
	}
	for off := int64(total - keep); off < total; off++ {
		res, err := r.Fetch(t.Context(), ingest.FetchRequest{Topic: "t", Offset: off, MaxRecords: 1})
		if err != nil || len(res.Records) != 1 || string(res.Records[0].Record.Value) != want[off] {
			t.Fatalf("live offset %d after GC: %+v %v", off, res, err)
		}
	}
}
