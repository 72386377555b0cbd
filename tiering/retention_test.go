package tiering

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// retEnv is a metadata store on one Redis engine and a bucket in memory,
// into which the tests write and commit real chunks created at chosen
// times.
type retEnv struct {
	t    *testing.T
	meta *metadata.Store
	bkt  *bucket.Bucket
	mr   *miniredis.Miniredis // nil on redis-server
	addr string               // the Redis server's
	now  time.Time            // the retention clock
}

var retEngines = []struct {
	name  string
	start func(t *testing.T) (string, *miniredis.Miniredis)
}{
	{"miniredis", func(t *testing.T) (string, *miniredis.Miniredis) {
		mr := miniredis.RunT(t)
		return mr.Addr(), mr
	}},
	{"redis-server", func(t *testing.T) (string, *miniredis.Miniredis) {
		return testserver.StartRedis(t, testserver.RedisOptions{}).Addr, nil
	}},
}

// forEngines runs f on miniredis and on a real redis-server.
func forEngines(t *testing.T, f func(t *testing.T, e *retEnv)) {
	for _, eng := range retEngines {
		t.Run(eng.name, func(t *testing.T) {
			addr, mr := eng.start(t)
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { rdb.Close() })
			f(t, &retEnv{t: t, meta: metadata.New(rdb, metadata.Options{}), bkt: bucket.New(objectstore.NewMemory()), mr: mr, addr: addr, now: time.Now()})
		})
	}
}

// topic creates a topic with the given retention.
func (e *retEnv) topic(name string, partitions int, ms, maxBytes int64) metadata.Topic {
	e.t.Helper()
	tp := metadata.Topic{Name: name, ID: ulid.Make().String(), Partitions: partitions, RetentionMS: ms, RetentionBytes: maxBytes, CreatedMS: e.now.UnixMilli()}
	if err := e.meta.CreateTopic(e.t.Context(), tp); err != nil {
		e.t.Fatal(err)
	}
	return tp
}

// commit writes a chunk created at `at` holding one batch of `records`
// 100-byte records for each listed partition of tp, and commits it.
func (e *retEnv) commit(tp metadata.Topic, at time.Time, records int, partitions ...int32) string {
	e.t.Helper()
	ctx := e.t.Context()
	gen, err := chunkid.NewGenerator("writer", func() time.Time { return at })
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := gen.New()
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := chunk.NewWriter(id.String())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range partitions {
		recs := make([]chunk.Record, records)
		for i := range recs {
			recs[i] = chunk.Record{Value: bytes.Repeat([]byte{'v'}, 100), Timestamp: 1}
		}
		if _, err := w.Add(chunk.BatchSpec{Topic: tp.Name, Partition: p}, recs); err != nil {
			e.t.Fatal(err)
		}
	}
	data, infos, err := w.Finish()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.bkt.PutChunk(ctx, id, data); err != nil {
		e.t.Fatal(err)
	}
	batches := make([]metadata.Batch, len(infos))
	for i, info := range infos {
		batches[i] = metadata.Batch{Partition: partitions[i], Records: info.Records, Offset: info.Offset, Length: info.Length}
	}
	if _, err := e.meta.Commit(ctx, tp, id.String(), batches); err != nil {
		e.t.Fatal(err)
	}
	return id.String()
}

// retention returns a retention pass on the env's clock with its own
// registry.
func (e *retEnv) retention(maxTrim int) (*Retention, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	r, err := NewRetention(RetentionConfig{MaxTrim: maxTrim, Now: func() time.Time { return e.now }}, e.meta, reg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r, reg
}

// stats returns the partition's offsets and stored bytes.
func (e *retEnv) stats(name string, p int32) metadata.PartitionStats {
	e.t.Helper()
	_, stats, err := e.meta.PartitionStats(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return stats[p]
}

// head returns the partition's entries.
func (e *retEnv) head(name string, p int32) ([]metadata.IndexEntry, int64) {
	e.t.Helper()
	entries, stored, err := e.meta.Head(e.t.Context(), name, p, metadata.MaxTrimEntries)
	if err != nil {
		e.t.Fatal(err)
	}
	return entries, stored
}

// countRenew returns a renew that counts its calls.
func countRenew(n *int) func() error {
	return func() error { *n++; return nil }
}

func TestRetentionTrimsByAppendTime(t *testing.T) {
	forEngines(t, func(t *testing.T, e *retEnv) {
		ctx := t.Context()
		tp := e.topic("timed", 2, (150 * time.Second).Milliseconds(), 0)
		other := e.topic("forever", 1, 0, 0)
		var ids []string
		for age := 5; age >= 1; age-- { // chunks written 5, 4, 3, 2 and 1 minutes ago
			ids = append(ids, e.commit(tp, e.now.Add(-time.Duration(age)*time.Minute), 3, 0, 1))
		}
		e.commit(other, e.now.Add(-5*time.Minute), 3, 0)
		before, _ := e.head("timed", 0)
		r, reg := e.retention(2)
		var renews int
		if err := r.Pass(ctx, countRenew(&renews)); err != nil {
			t.Fatal(err)
		}
		// Older than 150 s: the first three chunks; each partition trims
		// them in two steps of at most 2 entries.
		for p := range int32(2) {
			s := e.stats("timed", p)
			if s.LogStartOffset != 9 || s.HighWatermark != 15 {
				t.Fatalf("partition %d: offsets [%d,%d), want [9,15)", p, s.LogStartOffset, s.HighWatermark)
			}
			if want := before[3].Length + before[4].Length; s.StoredBytes != want {
				t.Fatalf("partition %d: stored %d bytes, want %d", p, s.StoredBytes, want)
			}
		}
		if renews < 2+2*2 {
			t.Fatalf("renew called %d times, want at least once per topic and per step (6)", renews)
		}
		if got := e.stats("forever", 0); got.LogStartOffset != 0 {
			t.Fatalf("a topic without retention was trimmed to %d", got.LogStartOffset)
		}
		if got := testutil.ToFloat64(r.trimmedEntries); got != 6 {
			t.Fatalf("trimmed entries = %v, want 6", got)
		}
		if got, want := testutil.ToFloat64(r.trimmedBytes), float64(2*(before[0].Length+before[1].Length+before[2].Length)); got != want {
			t.Fatalf("trimmed bytes = %v, want %v", got, want)
		}
		u, err := e.meta.Usage(ctx, "timed")
		if err != nil {
			t.Fatal(err)
		}
		if u.Objects != 2 {
			t.Fatalf("topic refers to %d objects, want 2 (%v)", u.Objects, ids[3:])
		}
		if got := testutil.ToFloat64(r.storedBytes.WithLabelValues("timed")); got != float64(u.StoredBytes) {
			t.Fatalf("stored bytes gauge %v, want %d", got, u.StoredBytes)
		}
		if got := testutil.ToFloat64(r.objects.WithLabelValues("timed")); got != 2 {
			t.Fatalf("objects gauge %v, want 2", got)
		}
		if got := testutil.ToFloat64(r.logStartAge.WithLabelValues("timed")); math.Abs(got-120) > 1 {
			t.Fatalf("log start age %v s, want 120 (the chunk of 2 minutes ago)", got)
		}
		if got := testutil.ToFloat64(r.logStartAge.WithLabelValues("forever")); math.Abs(got-300) > 1 {
			t.Fatalf("log start age of the untrimmed topic %v s, want 300", got)
		}

		// Ten minutes on, everything has aged out; the empty partitions
		// have no log start age.
		e.now = e.now.Add(10 * time.Minute)
		if err := r.Pass(ctx, countRenew(&renews)); err != nil {
			t.Fatal(err)
		}
		if s := e.stats("timed", 1); s.LogStartOffset != 15 || s.StoredBytes != 0 {
			t.Fatalf("after expiry: %+v, want log start 15 and nothing stored", s)
		}
		if got := testutil.ToFloat64(r.logStartAge.WithLabelValues("timed")); got != 0 {
			t.Fatalf("log start age of an empty topic %v, want 0", got)
		}
		if got := testutil.ToFloat64(r.objects.WithLabelValues("timed")); got != 0 {
			t.Fatalf("objects gauge %v, want 0", got)
		}
		if n := testutil.CollectAndCount(reg, "mamba_topic_stored_bytes"); n != 2 {
			t.Fatalf("%d stored-bytes series, want 2", n)
		}
	})
}

func TestRetentionKeepsPartitionAtOrJustAboveRetentionBytes(t *testing.T) {
	forEngines(t, func(t *testing.T, e *retEnv) {
		ctx := t.Context()
		probe := e.topic("probe", 1, 0, 0)
		e.commit(probe, e.now, 4, 0)
		entries, _ := e.head("probe", 0)
		size := entries[0].Length // every batch below has this size
		for i, c := range []struct {
			limit    int64
			wantLeft int // entries left of 5
		}{
			{limit: 2*size + 1, wantLeft: 3}, // 2 entries would fall below the limit
			{limit: 2 * size, wantLeft: 2},   // exactly at the limit
			{limit: 1, wantLeft: 1},          // the newest entry always stays
			{limit: 5 * size, wantLeft: 5},   // at the limit already
			{limit: 6 * size, wantLeft: 5},   // under it
		} {
			name := "bytes" + string(rune('a'+i))
			tp := e.topic(name, 1, 0, c.limit)
			for range 5 {
				e.commit(tp, e.now, 4, 0)
			}
			r, _ := e.retention(0)
			if err := r.Pass(ctx, func() error { return nil }); err != nil {
				t.Fatal(err)
			}
			left, stored := e.head(name, 0)
			if len(left) != c.wantLeft || stored != int64(c.wantLeft)*size {
				t.Fatalf("limit %d: %d entries of %d bytes left, want %d", c.limit, len(left), stored, c.wantLeft)
			}
			if s := e.stats(name, 0); s.LogStartOffset != int64(5-c.wantLeft)*4 {
				t.Fatalf("limit %d: log start %d, want %d", c.limit, s.LogStartOffset, (5-c.wantLeft)*4)
			}
		}
	})
}

func TestRetentionRulesTable(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	entry := func(age time.Duration, length int64) metadata.IndexEntry {
		gen, _ := chunkid.NewGenerator("n", func() time.Time { return now.Add(-age) })
		id, _ := gen.New()
		return metadata.IndexEntry{Records: 1, ChunkID: id.String(), Length: length}
	}
	noTime := metadata.IndexEntry{Records: 1, ChunkID: "segment-without-time", Length: 10}
	for _, c := range []struct {
		name      string
		ms, bytes int64
		entries   []metadata.IndexEntry
		stored    int64
		wantN     int
		wantFreed int64
	}{
		{"no retention", 0, 0, []metadata.IndexEntry{entry(time.Hour, 10)}, 10, 0, 0},
		{"time, older only", 60_000, 0, []metadata.IndexEntry{entry(2*time.Minute, 10), entry(time.Minute, 10), entry(0, 10)}, 30, 1, 10},
		{"time, exactly at the limit stays", 60_000, 0, []metadata.IndexEntry{entry(time.Minute, 10)}, 10, 0, 0},
		{"time, an older entry behind a young one waits", 60_000, 0, []metadata.IndexEntry{entry(0, 10), entry(time.Hour, 10)}, 20, 0, 0},
		{"time, no time in the id stays", 60_000, 0, []metadata.IndexEntry{noTime, entry(time.Hour, 10)}, 20, 0, 0},
		{"bytes", 0, 15, []metadata.IndexEntry{entry(0, 10), entry(0, 10), entry(0, 10)}, 30, 1, 10},
		{"either rule", 60_000, 20, []metadata.IndexEntry{entry(time.Hour, 10), entry(0, 10), entry(0, 10), entry(0, 10)}, 40, 2, 20},
		{"empty", 60_000, 1, nil, 0, 0, 0},
	} {
		tp := metadata.Topic{RetentionMS: c.ms, RetentionBytes: c.bytes}
		n, freed := expired(tp, c.entries, c.stored, now)
		if n != c.wantN || freed != c.wantFreed {
			t.Errorf("%s: expired %d entries of %d bytes, want %d of %d", c.name, n, freed, c.wantN, c.wantFreed)
		}
	}
}

func TestRetentionSkipsATopicDeletedAndRecreatedMidPass(t *testing.T) {
	forEngines(t, func(t *testing.T, e *retEnv) {
		ctx := t.Context()
		old := e.topic("a", 1, 0, 1)
		for range 4 {
			e.commit(old, e.now, 2, 0)
		}
		b := e.topic("b", 1, 0, 1)
		for range 3 {
			e.commit(b, e.now, 2, 0)
		}
		r, reg := e.retention(1)
		// After the first step on "a", "a" is deleted and created again
		// with entries the old retention_bytes would trim.
		steps := 0
		renew := func() error {
			steps++
			if steps == 2 {
				if err := e.meta.DeleteTopic(ctx, "a"); err != nil {
					return err
				}
				recreated := e.topic("a", 1, 0, 0)
				e.commit(recreated, e.now, 2, 0)
				e.commit(recreated, e.now, 2, 0)
			}
			return nil
		}
		if err := r.Pass(ctx, renew); err != nil {
			t.Fatalf("pass over a topic deleted under it: %v", err)
		}
		if left, _ := e.head("a", 0); len(left) != 2 {
			t.Fatalf("the recreated topic has %d entries, want its 2 untouched", len(left))
		}
		if s := e.stats("a", 0); s.LogStartOffset != 0 {
			t.Fatalf("the recreated topic's log start is %d, want 0", s.LogStartOffset)
		}
		if s := e.stats("b", 0); s.LogStartOffset != 4 {
			t.Fatalf("topic b after the deleted one: log start %d, want 4", s.LogStartOffset)
		}
		// "a" had no gauges this pass; the next pass sets the new one's.
		if n := testutil.CollectAndCount(reg, "mamba_topic_objects"); n != 1 {
			t.Fatalf("%d objects series after the pass, want 1 (b)", n)
		}
		if err := r.Pass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if got := testutil.ToFloat64(r.objects.WithLabelValues("a")); got != 2 {
			t.Fatalf("objects of the recreated topic %v, want 2", got)
		}
		// A deleted topic's series go at the next pass.
		if err := e.meta.DeleteTopic(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := r.Pass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"mamba_topic_objects", "mamba_topic_stored_bytes", "mamba_topic_log_start_age_seconds"} {
			if n := testutil.CollectAndCount(reg, name); n != 1 {
				t.Fatalf("%d %s series after b was deleted, want 1", n, name)
			}
		}
	})
}

func TestRetentionJobStopsWhenItLosesTheLease(t *testing.T) {
	e := &retEnv{t: t, bkt: bucket.New(objectstore.NewMemory()), now: time.Now()}
	e.meta, e.mr = miniStore(t)
	ctx := t.Context()
	tp := e.topic("t", 1, 1000, 0)
	for range 6 {
		e.commit(tp, e.now.Add(-time.Minute), 1, 0)
	}
	r, reg := e.retention(1)
	cfg := func(holder string) JobConfig {
		return JobConfig{Name: RetentionJobName, Holder: holder, Interval: time.Minute, LeaseTTL: 10 * time.Second}
	}
	other, err := NewJob(cfg("b"), e.meta, func(context.Context, func() error) error { return nil }, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// After two steps node a stalls past its lease and b takes the job.
	steps := 0
	job, err := NewJob(cfg("a"), e.meta, func(ctx context.Context, renew func() error) error {
		return r.Pass(ctx, func() error {
			if steps++; steps == 3 {
				e.mr.FastForward(11 * time.Second)
				if ran, err := other.RunOnce(ctx); err != nil || !ran {
					t.Fatalf("b took the job: %v %v", ran, err)
				}
			}
			return renew()
		})
	}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.RunOnce(ctx); !errors.Is(err, errLeaseLost) {
		t.Fatalf("pass after losing the lease: %v, want lease lost", err)
	}
	// The first renew is before the topic; steps 2 and 3 follow a trim
	// each, and the pass stopped at the third renew.
	if s := e.stats("t", 0); s.LogStartOffset != 2 {
		t.Fatalf("log start %d after the lost lease, want 2 (two steps)", s.LogStartOffset)
	}
	if got := testutil.ToFloat64(r.trimmedEntries); got != 2 {
		t.Fatalf("trimmed %v entries, want 2", got)
	}
}

func TestRetentionConfigValidate(t *testing.T) {
	for _, n := range []int{-1, metadata.MaxTrimEntries + 1} {
		if _, err := NewRetention(RetentionConfig{MaxTrim: n}, nil, nil, nil); err == nil {
			t.Errorf("max trim %d accepted", n)
		}
	}
}

func TestRetentionRereadsAHeadThatChangedUnderIt(t *testing.T) {
	forEngines(t, func(t *testing.T, e *retEnv) {
		ctx := t.Context()
		tp := e.topic("raced", 1, 0, 1)
		for range 4 {
			e.commit(tp, e.now, 1, 0)
		}
		// The clock is read between Head and Trim: there another trimmer
		// (a compaction swap, say) removes the first entry.
		calls := 0
		r, err := NewRetention(RetentionConfig{Now: func() time.Time {
			if calls++; calls == 1 {
				first, _, err := e.meta.Head(ctx, "raced", 0, 1)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok, err := e.meta.Trim(ctx, tp, 0, first); err != nil || !ok {
					t.Fatalf("racing trim: %v %v", ok, err)
				}
			}
			return e.now
		}}, e.meta, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Pass(ctx, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if s := e.stats("raced", 0); s.LogStartOffset != 3 {
			t.Fatalf("log start %d, want 3 (only the newest entry left)", s.LogStartOffset)
		}
		if got := testutil.ToFloat64(r.trimmedEntries); got != 2 {
			t.Fatalf("this pass trimmed %v entries, want 2 (the racing trim took one)", got)
		}
	})
}

// A node whose retention job finds the lease held by another clears the
// per-topic gauges it published while it held it.
func TestRetentionGaugesClearedWhenAnotherNodeHoldsTheLease(t *testing.T) {
	e := &retEnv{t: t, bkt: bucket.New(objectstore.NewMemory()), now: time.Now()}
	e.meta, e.mr = miniStore(t)
	ctx := t.Context()
	tp := e.topic("t", 1, 0, 0)
	e.commit(tp, e.now, 1, 0)
	cfg := func(holder string) JobConfig {
		return JobConfig{Name: RetentionJobName, Holder: holder, Interval: time.Minute, LeaseTTL: 10 * time.Second}
	}
	reg := prometheus.NewRegistry()
	a, err := NewRetentionJob(cfg("a"), RetentionConfig{MaxTrim: 10}, e.meta, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := a.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("a's pass: %v %v", ran, err)
	}
	if n := testutil.CollectAndCount(reg, "mamba_topic_stored_bytes"); n != 1 {
		t.Fatalf("%d stored-bytes series after a's pass, want 1", n)
	}
	// a stalls past its lease; b takes the job; a's next attempt finds it
	// held and clears its gauges.
	e.mr.FastForward(11 * time.Second)
	b, err := NewRetentionJob(cfg("b"), RetentionConfig{MaxTrim: 10}, e.meta, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := b.RunOnce(ctx); err != nil || !ran {
		t.Fatalf("b's pass: %v %v", ran, err)
	}
	if ran, err := a.RunOnce(ctx); err != nil || ran {
		t.Fatalf("a ran while b holds the lease: %v %v", ran, err)
	}
	for _, name := range []string{"mamba_topic_stored_bytes", "mamba_topic_objects", "mamba_topic_log_start_age_seconds"} {
		if n := testutil.CollectAndCount(reg, name); n != 0 {
			t.Errorf("%d %s series on a node without the lease, want 0", n, name)
		}
	}
}
