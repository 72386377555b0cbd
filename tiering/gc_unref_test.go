package tiering

import (
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// A chunk retention trimmed is marked by the next pass, from the trim's
// hand-over, while the cursor's listing is still busy with older live
// chunks; a chunk another topic still names, or one younger than the
// commit age limit, is not marked, and the lists are drained either way.
func TestGCMarksHandedOverChunksBeforeTheListingReachesThem(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: time.Hour, Batch: 2})
	keep, r := e.topic("keep", 1), e.topic("r", 1)
	for range 6 { // live history ahead of the cursor: three passes' worth
		id, infos := e.putChunk("keep")
		e.commit(keep, id, infos)
		e.advance(time.Millisecond)
	}
	only, onlyInfos := e.putChunk("r")
	e.commit(r, only, onlyInfos)
	e.advance(time.Millisecond)
	shared, sharedInfos := e.putChunk("r", "keep")
	e.commit(r, shared, sharedInfos)
	e.commit(keep, shared, sharedInfos)
	e.advance(commitAge + time.Second)
	e.trim(r)

	st := e.pass()
	if st.HandedOver != 2 || st.Marked != 1 || st.Wrapped {
		t.Fatalf("first pass: %+v; want both of r's chunks handed over, one marked, the listing not through", st)
	}
	onlyKey := bucket.ChunkKey(only.String())
	if got := e.pendingKeys(); !slices.Equal(got, []string{onlyKey}) {
		t.Fatalf("pending %v, want only the trimmed chunk %s", got, onlyKey)
	}
	if left, err := e.meta.TakeUnreferenced(t.Context(), "r", 10); err != nil || len(left) != 0 {
		t.Fatalf("r's list after the pass: %v, %v; want it drained", left, err)
	}

	// Trimmed while younger than the commit age limit: taken, not marked,
	// left to the listing.
	young, youngInfos := e.putChunk("r")
	e.commit(r, young, youngInfos)
	e.trim(r)
	if st := e.pass(); st.HandedOver != 1 || st.Marked != 0 {
		t.Fatalf("pass after trimming a young chunk: %+v", st)
	}
	if got := e.pendingKeys(); slices.Contains(got, bucket.ChunkKey(young.String())) {
		t.Fatalf("a chunk younger than the commit age limit was marked: %v", got)
	}
}

// The same on a real clock and both engines: one pass after the trim
// (and the commit age limit) marks the chunk although the listing, one
// chunk a pass, is three live chunks away from it.
func TestGCHandOverMarksInOnePass(t *testing.T) {
	const age = time.Second // the commit age limit
	forEngines(t, func(t *testing.T, env *retEnv) {
		ctx := t.Context()
		rdb := redis.NewClient(&redis.Options{Addr: env.addr})
		t.Cleanup(func() { rdb.Close() })
		meta := metadata.New(rdb, metadata.Options{MaxCommitAge: age})
		store := objectstore.NewMemory()
		e := &gcEnv{t: t, meta: meta, store: store, b: bucket.New(store)}
		c, err := NewCollector(GCConfig{Grace: time.Hour, Batch: 1}, meta, store, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.c = c
		keep, r := e.topic("keep", 1), e.topic("r", 1)
		start, err := meta.Now(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var last chunkid.ID
		for i, name := range []string{"keep", "keep", "keep", "r"} {
			at := start.Add(-age + 200*time.Millisecond + time.Duration(i)*time.Millisecond)
			if e.gen, err = chunkid.NewGenerator("n1", func() time.Time { return at }); err != nil {
				t.Fatal(err)
			}
			id, infos := e.putChunk(name)
			e.commit(map[string]metadata.Topic{"keep": keep, "r": r}[name], id, infos)
			last = id
		}
		e.trim(r)
		// Wait, by Redis's clock, until the chunk is past the limit.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			now, err := meta.Now(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if now.Sub(last.Time()) > age {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Redis's clock did not pass the commit age limit")
			}
		}
		st := e.pass()
		if st.HandedOver != 1 || st.Marked != 1 {
			t.Fatalf("pass: %+v; want the trimmed chunk handed over and marked", st)
		}
		ms, err := meta.GCPending(ctx, time.Now().Add(time.Hour), 10)
		if err != nil || len(ms) != 1 || ms[0].Key != bucket.ChunkKey(last.String()) {
			t.Fatalf("pending %+v, %v; want only %s", ms, err, last)
		}
	})
}
