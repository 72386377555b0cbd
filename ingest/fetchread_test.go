package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
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

// These tests drive Node.read, the part of Fetch after the index lookup,
// on an in-memory bucket behind bucket.Instrument: the GETs counted are
// those mamba_objectstore_requests_total reports. No Redis is involved.

// rangeLog wraps a store and records every ranged GET; when gate is set,
// each GetRange announces itself on arrived and waits for gate to close.
type rangeLog struct {
	objectstore.Store
	mu      sync.Mutex
	ranges  [][2]int64
	arrived chan struct{}
	gate    chan struct{}
}

func (s *rangeLog) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	s.mu.Lock()
	s.ranges = append(s.ranges, [2]int64{off, length})
	arrived, gate := s.arrived, s.gate
	s.mu.Unlock()
	if gate != nil {
		arrived <- struct{}{}
		<-gate
	}
	return s.Store.GetRange(ctx, key, off, length)
}

func (s *rangeLog) log() [][2]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][2]int64(nil), s.ranges...)
}

type readEnv struct {
	t     *testing.T
	n     *Node
	reg   *prometheus.Registry
	mem   *objectstore.Memory
	log   *rangeLog
	ids   *chunkid.Generator
	next  int64                 // next offset of partition 0
	want  []chunk.Record        // every record of partition 0, by offset
	index []metadata.IndexEntry // partition 0's index
}

func newReadEnv(t *testing.T, cfg Config) *readEnv {
	t.Helper()
	cfg.NodeID = "reader"
	reg := prometheus.NewRegistry()
	mem := objectstore.NewMemory()
	log := &rangeLog{Store: mem}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	n, err := New(cfg, metadata.New(rdb, metadata.Options{}), bucket.Instrument(log, reg), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := chunkid.NewGenerator("writer", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &readEnv{t: t, n: n, reg: reg, mem: mem, log: log, ids: ids}
	n.lookup = r.lookup
	return r
}

// lookup is metadata.Store.Lookup over the env's index.
func (r *readEnv) lookup(_ context.Context, _ string, _ int32, offset int64, maxEntries int) ([]metadata.IndexEntry, metadata.PartitionStats, error) {
	first := 0
	for first < len(r.index) && r.index[first].NextOffset() <= offset {
		first++
	}
	return r.index[first:min(len(r.index), first+maxEntries)], metadata.PartitionStats{HighWatermark: r.next}, nil
}

// addChunk writes one chunk holding, for each element of sizes, a batch of
// partition 0 with that many 1 KiB records, each followed by a batch of
// partition 1 of otherBytes of values when otherBytes > 0 (a gap in
// partition 0's ranges). It indexes partition 0's batches.
func (r *readEnv) addChunk(sizes []int, otherBytes int) string {
	r.t.Helper()
	id, err := r.ids.New()
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := chunk.NewWriter(id.String())
	if err != nil {
		r.t.Fatal(err)
	}
	var mine []int
	for _, count := range sizes {
		recs := make([]chunk.Record, count)
		for i := range recs {
			off := r.next + int64(i)
			recs[i] = chunk.Record{
				Key:       []byte(fmt.Sprintf("key-%d", off)),
				Value:     bytes.Repeat([]byte{byte(off)}, 1024),
				Headers:   []chunk.Header{{Name: "off", Value: []byte(fmt.Sprint(off))}},
				Timestamp: 1_700_000_000_000 + off,
			}
		}
		if _, err := w.Add(chunk.BatchSpec{Topic: "t", Partition: 0}, recs); err != nil {
			r.t.Fatal(err)
		}
		mine = append(mine, w.Batches()-1)
		r.want = append(r.want, recs...)
		r.next += int64(count)
		if otherBytes > 0 {
			other := []chunk.Record{{Value: make([]byte, otherBytes), Timestamp: 1}}
			if _, err := w.Add(chunk.BatchSpec{Topic: "t", Partition: 1}, other); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	data, infos, err := w.Finish()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.mem.Put(context.Background(), bucket.ChunkKey(id.String()), data); err != nil {
		r.t.Fatal(err)
	}
	base := r.next
	for _, c := range sizes {
		base -= int64(c)
	}
	for _, i := range mine {
		info := infos[i]
		r.index = append(r.index, metadata.IndexEntry{BaseOffset: base, Records: info.Records, ChunkID: id.String(), Offset: info.Offset, Length: info.Length})
		base += int64(info.Records)
	}
	return id.String()
}

// fetch reads from offset as Fetch would after a lookup of up to
// fetchIndexEntries entries, the high watermark being the end of the log.
func (r *readEnv) fetch(offset int64, maxBytes int) (FetchResult, error) {
	req := FetchRequest{Topic: "t", Partition: 0, Offset: offset, MaxRecords: MaxFetchRecords, MaxBytes: maxBytes}
	entries, _, _ := r.lookup(context.Background(), "t", 0, offset, fetchIndexEntries)
	return r.n.read(context.Background(), req, entries, FetchResult{NextOffset: offset, HighWatermark: r.next})
}

func (r *readEnv) gets() int {
	return int(testutil.ToFloat64(r.n.metrics.fetchGets))
}

func (r *readEnv) storeGets() int {
	m, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	total := 0.0
	for _, f := range m {
		if f.GetName() != "mamba_objectstore_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == bucket.OpGetRange {
					total += s.GetCounter().GetValue()
				}
			}
		}
	}
	return int(total)
}

// check compares fetched records with what was written at their offsets.
func (r *readEnv) check(res FetchResult, from int64) {
	r.t.Helper()
	for i, got := range res.Records {
		off := from + int64(i)
		if got.Offset != off {
			r.t.Fatalf("record %d has offset %d, want %d", i, got.Offset, off)
		}
		want := r.want[off]
		if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) || got.Timestamp != want.Timestamp ||
			len(got.Headers) != 1 || !bytes.Equal(got.Headers[0].Value, want.Headers[0].Value) {
			r.t.Fatalf("offset %d: got key %q, %d value bytes, want key %q", off, got.Key, len(got.Value), want.Key)
		}
	}
	if len(res.Records) > 0 && res.NextOffset != from+int64(len(res.Records)) {
		r.t.Fatalf("next offset %d after %d records from %d", res.NextOffset, len(res.Records), from)
	}
}

func fetchedBytes(res FetchResult) int {
	total := 0
	for _, rec := range res.Records {
		total += recordSize(rec.Key, rec.Value, rec.Headers)
	}
	return total
}

func TestFetchMergesAdjacentBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		otherBytes int // bytes of another partition between two batches
		wantGets   int
	}{
		{"contiguous", 0, 1},
		{"small gaps read through", 8 << 10, 1},
		{"large gaps split", 100 << 10, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReadEnv(t, Config{})
			r.addChunk([]int{8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8}, tc.otherBytes) // 12 batches of ~8.4 KB
			res, err := r.fetch(0, DefaultFetchMaxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Records) != 96 {
				t.Fatalf("fetched %d records, want all 96", len(res.Records))
			}
			r.check(res, 0)
			if got := r.storeGets(); got != tc.wantGets {
				t.Errorf("%d ranged GETs reached the store (%v), want %d", got, r.log.log(), tc.wantGets)
			}
			if got := r.gets(); got != tc.wantGets {
				t.Errorf("mamba_fetch_gets_total = %d, want %d", got, tc.wantGets)
			}
			// Served again from the cache: no GET.
			res, err = r.fetch(5, DefaultFetchMaxBytes)
			if err != nil || len(res.Records) != 91 {
				t.Fatalf("second fetch: %d records, %v", len(res.Records), err)
			}
			r.check(res, 5)
			if got := r.storeGets(); got != tc.wantGets {
				t.Errorf("second fetch made %d more GETs, want 0", got-tc.wantGets)
			}
		})
	}
}

func TestFetchReadsChunksConcurrentlyInOrder(t *testing.T) {
	r := newReadEnv(t, Config{ReadConcurrency: 3})
	for range 3 {
		r.addChunk([]int{4, 4}, 0)
	}
	// Every GET waits until all three have started: a fetch reading the
	// chunks one after another would never get past the first.
	r.log.arrived, r.log.gate = make(chan struct{}, 3), make(chan struct{})
	type result struct {
		res FetchResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := r.fetch(1, DefaultFetchMaxBytes)
		done <- result{res, err}
	}()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for i := range 3 {
		select {
		case <-r.log.arrived:
		case <-timeout.C:
			t.Fatalf("only %d of 3 GETs in flight at once", i)
		}
	}
	close(r.log.gate)
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if len(got.res.Records) != 23 {
		t.Fatalf("fetched %d records, want 23", len(got.res.Records))
	}
	r.check(got.res, 1)
	if n := r.storeGets(); n != 3 {
		t.Errorf("%d GETs for 3 chunks, want 3", n)
	}
}

func TestFetchHonoursMaxBytes(t *testing.T) {
	r := newReadEnv(t, Config{ReadAheadBytes: 1}) // no batch fits: no read-ahead
	r.addChunk([]int{8, 8, 8, 8, 8, 8, 8, 8}, 0)
	batch := int(r.index[0].Length)
	for _, maxBytes := range []int{1, 3 * 1024, 2*batch + 100} {
		res, err := r.fetch(3, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		r.check(res, 3)
		if len(res.Records) == 0 {
			t.Fatalf("max bytes %d: no records, want at least one", maxBytes)
		}
		if got := fetchedBytes(res); len(res.Records) > 1 && got > maxBytes {
			t.Errorf("max bytes %d: fetched %d bytes", maxBytes, got)
		}
	}
	// The GETs read at most max bytes plus one batch.
	for _, rg := range r.log.log() {
		if rg[1] > int64(2*batch+100+batch) {
			t.Errorf("GET of %d bytes for fetches of at most %d", rg[1], 2*batch+100)
		}
	}
}

func TestFetchReadAheadFillsCatchUpCacheOnly(t *testing.T) {
	batch := 8*1024 + 500 // about; the budget below is in batches
	r := newReadEnv(t, Config{CacheBytes: 1 << 20, ReadAheadBytes: int64(4 * batch), CatchUpCacheBytes: int64(10 * batch), ReadMaxBytes: 64 << 10})
	// 40 chunks of 2 batches: a long history to catch up on.
	for range 40 {
		r.addChunk([]int{8, 8}, 0)
	}
	// What live consumers tail: recently written batches in the batch cache.
	tail := map[string]int{}
	for i := range 20 {
		key := fmt.Sprintf("tail-%d@0", i)
		r.n.cache.put(key, make([]byte, 4096))
		tail[key] = 4096
	}
	// A catch-up reader: 2-batch fetches from offset 0 to the end.
	off, gets := int64(0), 0
	for off < r.next {
		before := r.storeGets()
		res, err := r.fetch(off, 2*8*1040)
		if err != nil {
			t.Fatal(err)
		}
		r.check(res, off)
		off = res.NextOffset
		gets += r.storeGets() - before
		if size := r.n.catchUp.size(); size > r.n.cfg.CatchUpCacheBytes {
			t.Fatalf("catch-up cache holds %d bytes, over its budget %d", size, r.n.cfg.CatchUpCacheBytes)
		}
	}
	// Each chunk's two batches are read with one GET, and no chunk twice:
	// what was read ahead was still cached when the reader came to it.
	if gets != 40 {
		t.Errorf("%d GETs for 80 batches in 40 chunks, want 40", gets)
	}
	if ev := r.n.catchUp.evicted(); ev == 0 {
		t.Errorf("catch-up cache evicted nothing after 80 batches through a 10-batch budget")
	}
	if ev := r.n.cache.evicted(); ev != 0 {
		t.Errorf("the batch cache evicted %d entries for a catch-up reader", ev)
	}
	for key := range tail {
		if !r.n.cache.has(key) {
			t.Errorf("tail batch %s was evicted", key)
		}
	}
	if got := int64(testutil.ToFloat64(r.n.metrics.readAheadBatches)); got == 0 {
		t.Error("mamba_fetch_read_ahead_batches_total is 0")
	}
}

// Small batches: the read-ahead window holds more entries than a fetch's
// lookup returns, so the fetch looks further, and one GET still reads it.
func TestFetchReadAheadLooksPastTheFirstLookup(t *testing.T) {
	r := newReadEnv(t, Config{ReadAheadBytes: 150 << 10})
	sizes := make([]int, 300)
	for i := range sizes {
		sizes[i] = 1
	}
	r.addChunk(sizes, 0) // 300 batches of about 1.1 KB
	off := int64(0)
	for off < 150 {
		res, err := r.fetch(off, 16<<10)
		if err != nil {
			t.Fatal(err)
		}
		r.check(res, off)
		off = res.NextOffset
	}
	if got := r.storeGets(); got != 1 {
		t.Errorf("%d GETs to read 150 of 300 batches with 150 KiB of read-ahead, want 1 (ranges %v)", got, r.log.log())
	}
	if got := testutil.ToFloat64(r.n.metrics.readAheadBatches); got <= fetchIndexEntries {
		t.Errorf("%.0f batches read ahead, want more than one lookup's %d", got, fetchIndexEntries)
	}
}

func TestFetchNearTheEndDoesNotReadAhead(t *testing.T) {
	r := newReadEnv(t, Config{})
	r.addChunk([]int{8, 8, 8}, 0)
	// The fetch wants two batches, and the one after it is less than a
	// fetch: not far behind, so one GET of two batches, into the batch
	// cache as before.
	res, err := r.fetch(0, int(2*r.index[0].Length))
	if err != nil || len(res.Records) < 8 {
		t.Fatalf("fetch: %d records, %v", len(res.Records), err)
	}
	if got := r.storeGets(); got != 1 {
		t.Errorf("%d GETs, want 1", got)
	}
	if r.n.catchUp.size() != 0 || r.n.cache.size() == 0 {
		t.Errorf("catch-up cache %d bytes, batch cache %d: want the batch in the batch cache", r.n.catchUp.size(), r.n.cache.size())
	}
}

func TestFetchBadRangesAreErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		damage   func(r *readEnv, id string)
		wantGets int
	}{
		{"flipped byte", func(r *readEnv, id string) {
			data, err := r.mem.Get(context.Background(), bucket.ChunkKey(id))
			if err != nil {
				r.t.Fatal(err)
			}
			data[r.index[0].Offset+chunk.BatchHeaderSize+5] ^= 0xff
			if err := r.mem.Put(context.Background(), bucket.ChunkKey(id), data); err != nil {
				r.t.Fatal(err)
			}
		}, 1},
		{"truncated chunk", func(r *readEnv, id string) {
			data, err := r.mem.Get(context.Background(), bucket.ChunkKey(id))
			if err != nil {
				r.t.Fatal(err)
			}
			if err := r.mem.Put(context.Background(), bucket.ChunkKey(id), data[:r.index[0].Offset+100]); err != nil {
				r.t.Fatal(err)
			}
		}, 1},
		{"range past the end", func(r *readEnv, _ string) {
			r.index[0].Offset += 1 << 20
		}, 2},
		{"impossible length", func(r *readEnv, _ string) {
			r.index[0].Length = 1 << 40
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReadEnv(t, Config{})
			id := r.addChunk([]int{8, 8}, 0)
			tc.damage(r, id)
			res, err := r.fetch(0, DefaultFetchMaxBytes)
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("fetch of a damaged range: %d records, error %v; want chunk.ErrCorrupt", len(res.Records), err)
			}
			if len(res.Records) != 0 {
				t.Errorf("%d records returned with the error", len(res.Records))
			}
			if got := r.storeGets(); got != tc.wantGets {
				t.Errorf("%d GETs, want %d", got, tc.wantGets)
			}
		})
	}
}

func TestReadConfigValidation(t *testing.T) {
	err := Config{NodeID: "n", ReadGapBytes: -1, ReadMaxBytes: 1, ReadConcurrency: 1000, ReadAheadBytes: 8 << 20, CatchUpCacheBytes: 1 << 20}.Validate()
	for _, want := range []string{"read gap bytes", "read max bytes", "read concurrency", "catch-up cache bytes"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate: %v; want it to name %q", err, want)
		}
	}
	if err := (Config{NodeID: "n"}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
