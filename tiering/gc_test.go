package tiering

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// commitAge is the tests' commit age limit, short so that the clock (Redis
// TIME, set on miniredis) moves past it in one step.
const commitAge = time.Minute

// gcEnv is a collector on miniredis and a memory bucket, with a clock the
// test moves: Redis's TIME, which the collector and commit.lua read, and
// the chunk id generator's.
type gcEnv struct {
	t     *testing.T
	mr    *miniredis.Miniredis
	rdb   *redis.Client
	meta  *metadata.Store
	store objectstore.Store
	b     *bucket.Bucket
	c     *Collector
	reg   *prometheus.Registry
	now   time.Time
	gen   *chunkid.Generator
}

func newGCEnv(t *testing.T, cfg GCConfig) *gcEnv {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	e := &gcEnv{t: t, mr: mr, rdb: rdb, meta: metadata.New(rdb, metadata.Options{MaxCommitAge: commitAge}),
		store: objectstore.NewMemory(), reg: prometheus.NewRegistry(), now: time.UnixMilli(1_800_000_000_000)}
	mr.SetTime(e.now)
	e.b = bucket.New(e.store)
	var err error
	if e.gen, err = chunkid.NewGenerator("n1", func() time.Time { return e.now }); err != nil {
		t.Fatal(err)
	}
	if e.c, err = NewCollector(cfg, e.meta, e.store, e.reg, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *gcEnv) advance(d time.Duration) {
	e.now = e.now.Add(d)
	e.mr.SetTime(e.now)
}

func (e *gcEnv) topic(name string, partitions int) metadata.Topic {
	e.t.Helper()
	tp := metadata.Topic{Name: name, ID: name + "-id", Partitions: partitions, CreatedMS: e.now.UnixMilli()}
	if _, err := e.b.PutTopicConfig(e.t.Context(), bucket.TopicConfig(tp)); err != nil {
		e.t.Fatal(err)
	}
	if err := e.meta.CreateTopic(e.t.Context(), tp); err != nil {
		e.t.Fatal(err)
	}
	return tp
}

// putChunk writes a chunk, created now, with one batch per topic (in
// partition 0) and returns its id and directory.
func (e *gcEnv) putChunk(topics ...string) (chunkid.ID, []chunk.BatchInfo) {
	e.t.Helper()
	id, err := e.gen.New()
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := chunk.NewWriter(id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, name := range topics {
		if _, err := w.Add(chunk.BatchSpec{Topic: name}, []chunk.Record{{Value: []byte("v-" + name)}}); err != nil {
			e.t.Fatal(err)
		}
	}
	data, infos, err := w.Finish()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.b.PutChunk(e.t.Context(), id, data); err != nil {
		e.t.Fatal(err)
	}
	return id, infos
}

// commit indexes the chunk's batches of topic tp.
func (e *gcEnv) commit(tp metadata.Topic, id chunkid.ID, infos []chunk.BatchInfo) {
	e.t.Helper()
	var batches []metadata.Batch
	for _, b := range infos {
		if b.Topic == tp.Name {
			batches = append(batches, metadata.Batch{Partition: b.Partition, Records: b.Records, Offset: b.Offset, Length: b.Length})
		}
	}
	if _, err := e.meta.Commit(e.t.Context(), tp, id.String(), batches); err != nil {
		e.t.Fatal(err)
	}
}

// trim removes every index entry of the topic's partition 0, as retention
// does.
func (e *gcEnv) trim(tp metadata.Topic) {
	e.t.Helper()
	entries, _, err := e.meta.Head(e.t.Context(), tp.Name, 0, metadata.MaxTrimEntries)
	if err != nil || len(entries) == 0 {
		e.t.Fatalf("head of %s: %d entries, %v", tp.Name, len(entries), err)
	}
	if _, ok, err := e.meta.Trim(e.t.Context(), tp, 0, entries); err != nil || !ok {
		e.t.Fatalf("trim %s: %v %v", tp.Name, ok, err)
	}
}

func (e *gcEnv) pass() GCStats {
	e.t.Helper()
	st, err := e.c.RunPass(e.t.Context(), func() error { return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *gcEnv) exists(key string) bool {
	e.t.Helper()
	_, err := e.store.Stat(e.t.Context(), key)
	if err != nil && !errors.Is(err, objectstore.ErrNotExist) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *gcEnv) checkpoint() {
	e.t.Helper()
	if _, err := e.b.PutCheckpoint(e.t.Context(), e.now, "n1", []byte("ckpt")); err != nil {
		e.t.Fatal(err)
	}
}

func (e *gcEnv) pendingKeys() []string {
	e.t.Helper()
	ms, err := e.meta.GCPending(e.t.Context(), e.now.Add(time.Hour), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.Key)
	}
	return keys
}

// A chunk whose entries retention trimmed is deleted only after the
// commit age limit, the grace and a checkpoint newer than its mark; a
// chunk it shares with a live topic stays.
func TestGCDeletesTrimmedChunksOnlyWhenNothingReferencesThem(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: 10 * time.Minute, CheckpointGate: true})
	a, b := e.topic("a", 1), e.topic("b", 1)
	shared, sharedInfos := e.putChunk("a", "b")
	e.commit(a, shared, sharedInfos)
	e.commit(b, shared, sharedInfos)
	e.advance(time.Millisecond)
	only, onlyInfos := e.putChunk("a")
	e.commit(a, only, onlyInfos)
	e.trim(a)

	// Too young: a chunk younger than the commit age limit is not even
	// examined.
	if st := e.pass(); st.Examined != 0 || st.Marked != 0 || !st.Wrapped {
		t.Fatalf("pass on young chunks: %+v", st)
	}
	e.advance(commitAge + time.Second)
	if st := e.pass(); st.Examined != 2 || st.Marked != 1 {
		t.Fatalf("mark pass: %+v", st)
	}
	onlyKey, sharedKey := bucket.ChunkKey(only.String()), bucket.ChunkKey(shared.String())
	if got := e.pendingKeys(); !slices.Equal(got, []string{onlyKey}) {
		t.Fatalf("pending %v, want only %s", got, onlyKey)
	}
	// Past the grace, but the newest checkpoint predates the mark.
	e.checkpoint()
	e.advance(11 * time.Minute)
	if st := e.pass(); st.Deleted != 0 || !e.exists(onlyKey) {
		t.Fatalf("deleted before a checkpoint newer than the mark: %+v", st)
	}
	e.checkpoint()
	e.advance(time.Second)
	if st := e.pass(); st.Deleted != 1 || st.DeletedBytes <= 0 {
		t.Fatalf("sweep pass: %+v", st)
	}
	if e.exists(onlyKey) || !e.exists(sharedKey) {
		t.Fatalf("after sweep: trimmed chunk exists %v, shared chunk exists %v", e.exists(onlyKey), e.exists(sharedKey))
	}
	if got := testutil.ToFloat64(e.c.deleted); got != 1 {
		t.Fatalf("mamba_gc_deleted_objects_total = %v", got)
	}
	if got := testutil.ToFloat64(e.c.pending); got != 0 {
		t.Fatalf("mamba_gc_pending_objects = %v", got)
	}

	// Trimming b too frees the shared chunk.
	e.trim(b)
	e.pass()
	e.advance(11 * time.Minute)
	e.checkpoint()
	e.advance(time.Second)
	if st := e.pass(); st.Deleted != 1 || e.exists(sharedKey) {
		t.Fatalf("shared chunk after both topics trimmed: %+v, exists %v", st, e.exists(sharedKey))
	}
}

// An orphan (PUT, never committed) goes only once it is older than the
// commit age limit plus the grace; before the limit it could still be
// committed.
func TestGCDeletesOrphanAfterCommitAgeLimitAndGrace(t *testing.T) {
	grace := 5 * time.Minute
	e := newGCEnv(t, GCConfig{Grace: grace})
	e.topic("a", 1)
	orphan, _ := e.putChunk("a")
	key := bucket.ChunkKey(orphan.String())

	e.advance(commitAge - time.Second)
	if st := e.pass(); st.Examined != 0 {
		t.Fatalf("orphan younger than the commit age limit examined: %+v", st)
	}
	e.advance(2 * time.Second)
	if st := e.pass(); st.Marked != 1 {
		t.Fatalf("orphan not marked: %+v", st)
	}
	e.advance(grace - time.Second)
	if st := e.pass(); st.Deleted != 0 || !e.exists(key) {
		t.Fatalf("orphan deleted within its grace: %+v", st)
	}
	e.advance(2 * time.Second)
	if st := e.pass(); st.Deleted != 1 || e.exists(key) {
		t.Fatalf("orphan not deleted after limit + grace: %+v", st)
	}
}

// A deleted topic's chunks and its leftover config object are collected;
// a live topic's config stays.
func TestGCCollectsDeletedTopic(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: time.Minute})
	gone, live := e.topic("gone", 1), e.topic("live", 1)
	id, infos := e.putChunk("gone")
	e.commit(gone, id, infos)
	if err := e.meta.DeleteTopic(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	e.advance(commitAge + time.Second)
	if st := e.pass(); st.Marked != 2 { // the chunk and gone's config
		t.Fatalf("mark pass: %+v (pending %v)", st, e.pendingKeys())
	}
	e.advance(time.Minute + time.Second)
	if st := e.pass(); st.Deleted != 2 {
		t.Fatalf("sweep pass: %+v", st)
	}
	if e.exists(bucket.ChunkKey(id.String())) || e.exists(bucket.TopicConfigKey("gone", gone.ID)) {
		t.Fatal("deleted topic's chunk or config still in the bucket")
	}
	if !e.exists(bucket.TopicConfigKey("live", live.ID)) {
		t.Fatal("live topic's config deleted")
	}
}

// A pending object found referenced again at the sweep is unmarked and
// kept (the sweep never trusts the mark alone).
func TestGCSweepRechecksReferences(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: time.Minute})
	a := e.topic("a", 1)
	id, infos := e.putChunk("a")
	e.commit(a, id, infos)
	key := bucket.ChunkKey(id.String())
	if _, err := e.meta.GCMark(t.Context(), e.now, key); err != nil {
		t.Fatal(err)
	}
	e.advance(commitAge + time.Minute)
	if st := e.pass(); st.Deleted != 0 || st.Unmarked != 1 || !e.exists(key) {
		t.Fatalf("referenced chunk: %+v, exists %v", st, e.exists(key))
	}
	if got := e.pendingKeys(); len(got) != 0 {
		t.Fatalf("pending after sweep: %v", got)
	}
}

// The cursor moves Batch chunks per pass and starts over at the end; the
// pending set never grows past MaxPending.
func TestGCCursorAndPendingBound(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: time.Hour, Batch: 2, MaxPending: 3})
	e.topic("a", 1)
	for range 5 {
		e.putChunk("a") // orphans
		e.advance(time.Millisecond)
	}
	e.advance(commitAge + time.Second)
	var marked []int
	for range 3 {
		st := e.pass()
		marked = append(marked, st.Examined)
	}
	if !slices.Equal(marked, []int{2, 1, 0}) {
		t.Fatalf("examined per pass %v, want [2 1 0] (bounded by MaxPending 3)", marked)
	}
	if n, _ := e.meta.GCPendingCount(t.Context()); n != 3 {
		t.Fatalf("pending %d, want 3", n)
	}
}

// Passes of Batch chunks walk the bucket from the cursor and wrap at its
// end; the next cycle starts from the first chunk again.
func TestGCCursorWraps(t *testing.T) {
	e := newGCEnv(t, GCConfig{Grace: time.Hour, Batch: 2})
	a := e.topic("a", 1)
	for range 5 {
		id, infos := e.putChunk("a")
		e.commit(a, id, infos) // referenced: examined, never marked
		e.advance(time.Millisecond)
	}
	e.advance(commitAge + time.Second)
	var examined []int
	var wrapped []bool
	for range 4 {
		st := e.pass()
		examined = append(examined, st.Examined)
		wrapped = append(wrapped, st.Wrapped)
	}
	if !slices.Equal(examined, []int{2, 2, 1, 2}) || !slices.Equal(wrapped, []bool{false, false, true, false}) {
		t.Fatalf("examined %v wrapped %v, want [2 2 1 2] [false false true false]", examined, wrapped)
	}
}
