package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// How a fetch reads its batches:
//
//  1. It plans the index entries it needs: from the one covering
//     req.Offset on, until their batch bytes reach req.MaxBytes or their
//     records req.MaxRecords (at least one entry).
//  2. Each planned batch comes from the batch cache (recently written
//     batches, what tailing consumers read), else from the catch-up cache.
//  3. If some batch missed both and the reader is far behind the high
//     watermark (at least one more full fetch behind after this one), the
//     fetch is a catch-up fetch: it also reads the next ReadAheadBytes of
//     batches the lookup returned (all below the high watermark), and what
//     it reads from the bucket goes to the catch-up cache, so a reader
//     replaying history never evicts the batches live consumers tail.
//  4. The missing batches are grouped by chunk into ranges: batches whose
//     byte ranges are contiguous or ReadGapBytes apart are read with one
//     ranged GET of at most ReadMaxBytes (a larger single batch alone).
//     The ranges are read ReadConcurrency at a time; records are then
//     decoded in offset order, whatever order the GETs finished in.
//
// Memory: a fetch holds at most its planned bytes (req.MaxBytes plus one
// batch) and ReadAheadBytes, plus the gaps it reads through; every length
// comes from the index and is checked against the chunk format's limits
// before anything is allocated for it.

// fetchBatch is one planned batch of a fetch and, once read, its bytes.
type fetchBatch struct {
	e     metadata.IndexEntry
	data  []byte
	err   error
	ahead bool // read ahead for the catch-up cache, not returned now
}

// rangeRead is one ranged GET: bytes [off, off+length) of a chunk, which
// hold the batches at the given indexes of the plan.
type rangeRead struct {
	chunkID     string
	off, length int64
	batches     []int
}

// read decodes the entries' batches and collects records from req.Offset
// on, within the request's limits (but at least one record).
func (n *Node) read(ctx context.Context, req FetchRequest, entries []metadata.IndexEntry, res FetchResult) (FetchResult, error) {
	if err := checkEntries(entries); err != nil {
		return res, fmt.Errorf("read %s/%d: %w", req.Topic, req.Partition, err)
	}
	plan, missed := n.planFetch(req, entries)
	truncated := len(entries) >= fetchIndexEntries
	catchUp := missed && farBehind(req, entries[len(plan):], truncated, res.HighWatermark)
	if catchUp {
		rest := n.readAheadEntries(ctx, req, entries[len(plan):], truncated)
		plan = n.planReadAhead(plan, rest, res.HighWatermark)
	}
	plan, res.Memory = n.reserveFetch(plan)
	if res.Memory == nil && n.budget != nil {
		return res, n.MemoryFull()
	}
	n.readMissing(ctx, plan, catchUp)

	bytes := 0
	for _, b := range plan {
		if b.ahead {
			break // read-ahead batches follow every planned one
		}
		e := b.e
		if b.err != nil {
			if len(res.Records) > 0 {
				break // return what we have; the next fetch retries
			}
			return res, b.err
		}
		// The batch's CRC was checked when it entered the node.
		batch, err := chunk.DecodeCheckedBatch(b.data)
		if err != nil {
			return res, fmt.Errorf("read %s/%d at %d from chunk %s: %w", req.Topic, req.Partition, e.BaseOffset, e.ChunkID, err)
		}
		if len(batch.Records) != e.Records {
			return res, fmt.Errorf("read %s/%d: chunk %s batch at byte %d has %d records, index says %d: %w",
				req.Topic, req.Partition, e.ChunkID, e.Offset, len(batch.Records), e.Records, chunk.ErrCorrupt)
		}
		for i, rec := range batch.Records {
			off := e.BaseOffset + int64(i)
			if off < req.Offset {
				continue
			}
			size := recordSize(rec.Key, rec.Value, rec.Headers)
			if len(res.Records) > 0 && (len(res.Records) >= req.MaxRecords || bytes+size > req.MaxBytes) {
				return n.done(res, bytes), nil
			}
			res.Records = append(res.Records, FetchedRecord{Offset: off, Record: rec})
			res.NextOffset = off + 1
			bytes += size
		}
	}
	return n.done(res, bytes), nil
}

// fetchRecordBytes is what each record a fetch returns costs in memory
// beyond its bytes: its chunk.Record in the decoded batch and its
// FetchedRecord in the result.
var fetchRecordBytes = int64(unsafe.Sizeof(chunk.Record{}) + unsafe.Sizeof(FetchedRecord{}))

// fetchCost is the memory a fetch of plan holds: the bytes its ranged
// GETs read (gaps and read-ahead included), and for each batch it
// returns, its bytes again (a compressed batch is decompressed; counted
// at its stored size) and its records' structures.
func (n *Node) fetchCost(plan []fetchBatch) int64 {
	var cost int64
	for _, r := range n.planRanges(plan) {
		cost += r.length
	}
	for _, b := range plan {
		if !b.ahead {
			cost += b.e.Length + int64(b.e.Records)*fetchRecordBytes
		}
	}
	return cost
}

// reserveFetch reserves the memory of plan from the budget before any of
// it is read, reading less when that does not fit: without the read-ahead
// first, then only the first batch (the fetch answers fewer records). It
// returns the plan to read and its reservation, or nil when even one
// batch does not fit (counted as a refusal). Without a budget it returns
// plan and nil.
func (n *Node) reserveFetch(plan []fetchBatch) ([]fetchBatch, *membudget.Reservation) {
	mem := n.budget.Start(membudget.Fetch)
	if mem == nil {
		return plan, nil
	}
	own := len(plan)
	for own > 0 && plan[own-1].ahead {
		own--
	}
	for _, p := range [][]fetchBatch{plan, plan[:own], plan[:1]} {
		if mem.TryGrow(n.fetchCost(p)) {
			return p, mem
		}
	}
	mem.Refused()
	return plan, nil
}

func (n *Node) done(res FetchResult, bytes int) FetchResult {
	n.metrics.recordsOut.Add(float64(len(res.Records)))
	n.metrics.bytesOut.Add(float64(bytes))
	return res
}

// checkEntries rejects index entries whose byte ranges no chunk can hold,
// before any length of theirs sizes an allocation or a GET.
func checkEntries(entries []metadata.IndexEntry) error {
	for _, e := range entries {
		if e.Offset < 0 || e.Length < chunk.BatchHeaderSize || e.Length > chunk.BatchHeaderSize+chunk.MaxBatchBytes || e.Records < 1 {
			return fmt.Errorf("index entry at offset %d names bytes [%d, +%d) of chunk %s with %d records, which no batch has: %w",
				e.BaseOffset, e.Offset, e.Length, e.ChunkID, e.Records, chunk.ErrCorrupt)
		}
	}
	return nil
}

// planFetch returns the batches the fetch needs, those found in a cache
// filled in, and whether any was missing from both caches.
func (n *Node) planFetch(req FetchRequest, entries []metadata.IndexEntry) ([]fetchBatch, bool) {
	var bytes, records int64
	missed := false
	plan := make([]fetchBatch, 0, min(len(entries), 16))
	for _, e := range entries {
		if len(plan) > 0 && (bytes >= int64(req.MaxBytes) || records >= int64(req.MaxRecords)) {
			break
		}
		b := fetchBatch{e: e}
		b.data = n.cached(e)
		missed = missed || b.data == nil
		plan = append(plan, b)
		bytes += e.Length
		records += e.NextOffset() - max(e.BaseOffset, req.Offset)
	}
	return plan, missed
}

// farBehind reports whether a reader whose fetch ends before rest is at
// least one more full fetch behind the high watermark: the indexed batches
// after the fetch hold req.MaxBytes, or the lookup was truncated with
// req.MaxRecords records still to come.
func farBehind(req FetchRequest, rest []metadata.IndexEntry, truncated bool, hw int64) bool {
	if len(rest) == 0 {
		return false
	}
	var bytes int64
	for _, e := range rest {
		if bytes += e.Length; bytes >= int64(req.MaxBytes) {
			return true
		}
	}
	return truncated && hw-rest[0].BaseOffset >= int64(req.MaxRecords)
}

// readAheadIndexEntries bounds the index entries a catch-up fetch looks
// up beyond its first lookup to plan its read-ahead.
const readAheadIndexEntries = 256

// readAheadEntries returns rest, the entries the fetch's lookup found
// after its own batches, extended with one more lookup when rest was
// truncated and holds less than the read-ahead window. Read-ahead is an
// optimisation: a failed lookup just reads ahead less.
func (n *Node) readAheadEntries(ctx context.Context, req FetchRequest, rest []metadata.IndexEntry, truncated bool) []metadata.IndexEntry {
	if !truncated || len(rest) == 0 || n.lookup == nil {
		return rest
	}
	var bytes int64
	for _, e := range rest {
		bytes += e.Length
	}
	if bytes >= n.cfg.ReadAheadBytes {
		return rest
	}
	next := rest[len(rest)-1].NextOffset()
	more, _, err := n.lookup(ctx, req.Topic, req.Partition, next, readAheadIndexEntries)
	if err != nil || checkEntries(more) != nil {
		return rest
	}
	for len(more) > 0 && more[0].BaseOffset < next {
		more = more[1:] // an entry covering next starts before it: not adjacent, keep out
	}
	return append(rest[:len(rest):len(rest)], more...)
}

// planReadAhead appends to plan the batches of rest, in order, that are
// below the high watermark and in neither cache, until the next would
// take the read-ahead past ReadAheadBytes.
func (n *Node) planReadAhead(plan []fetchBatch, rest []metadata.IndexEntry, hw int64) []fetchBatch {
	var bytes int64
	for _, e := range rest {
		if e.NextOffset() > hw || bytes+e.Length > n.cfg.ReadAheadBytes {
			break
		}
		bytes += e.Length
		if n.cache.has(cacheKey(e.ChunkID, e.Offset)) || n.catchUp.has(cacheKey(e.ChunkID, e.Offset)) {
			continue
		}
		plan = append(plan, fetchBatch{e: e, ahead: true})
	}
	return plan
}

// cached returns the entry's batch from the batch cache or the catch-up
// cache, or nil.
func (n *Node) cached(e metadata.IndexEntry) []byte {
	key := cacheKey(e.ChunkID, e.Offset)
	if b, ok := n.cache.get(key); ok {
		n.metrics.cacheRequests.WithLabelValues("hit").Inc()
		return b
	}
	n.metrics.cacheRequests.WithLabelValues("miss").Inc()
	if b, ok := n.catchUp.get(key); ok {
		n.metrics.catchUpRequests.WithLabelValues("hit").Inc()
		return b
	}
	n.metrics.catchUpRequests.WithLabelValues("miss").Inc()
	return nil
}

// readMissing reads every batch of plan that has no bytes yet, setting
// its data or its error. Batches read go to the catch-up cache for a
// catch-up fetch and to the batch cache otherwise.
func (n *Node) readMissing(ctx context.Context, plan []fetchBatch, catchUp bool) {
	ranges := n.planRanges(plan)
	if len(ranges) == 0 {
		return
	}
	cache := n.cache
	if catchUp {
		cache = n.catchUp
	}
	sem := make(chan struct{}, n.cfg.ReadConcurrency)
	var wg sync.WaitGroup
	for _, r := range ranges {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// Each goroutine writes only the plan entries of its range.
			n.readRange(ctx, r, plan, cache)
		})
	}
	wg.Wait()
}

// planRanges groups the plan's missing batches into ranged GETs: by
// chunk, in byte order, a batch joins the previous range when it starts
// at most ReadGapBytes after that range's end and the range stays within
// ReadMaxBytes.
func (n *Node) planRanges(plan []fetchBatch) []rangeRead {
	var missing []int
	for i, b := range plan {
		if b.data == nil {
			missing = append(missing, i)
		}
	}
	slices.SortFunc(missing, func(a, b int) int {
		ea, eb := plan[a].e, plan[b].e
		return cmp.Or(cmp.Compare(ea.ChunkID, eb.ChunkID), cmp.Compare(ea.Offset, eb.Offset))
	})
	var ranges []rangeRead
	for _, i := range missing {
		e := plan[i].e
		if k := len(ranges) - 1; k >= 0 {
			r := &ranges[k]
			end := r.off + r.length
			if r.chunkID == e.ChunkID && e.Offset >= end && e.Offset-end <= n.cfg.ReadGapBytes &&
				e.Offset+e.Length-r.off <= n.cfg.ReadMaxBytes {
				r.length = e.Offset + e.Length - r.off
				r.batches = append(r.batches, i)
				continue
			}
		}
		ranges = append(ranges, rangeRead{chunkID: e.ChunkID, off: e.Offset, length: e.Length, batches: []int{i}})
	}
	return ranges
}

// rangeResult is what one ranged GET gave each of its batches.
type rangeResult struct {
	data [][]byte
	errs []error
}

// readRange reads one range with one GET (shared with concurrent fetches
// of the same range), checks each of its batches and caches the good ones.
func (n *Node) readRange(ctx context.Context, r rangeRead, plan []fetchBatch, cache *batchCache) {
	key := r.chunkID + "@" + strconv.FormatInt(r.off, 10) + "+" + strconv.FormatInt(r.length, 10)
	v, err, _ := n.gets.Do(key, func() (any, error) {
		b, err := n.bucket.ReadChunkRange(context.WithoutCancel(ctx), r.chunkID, r.off, r.length)
		n.metrics.fetchGets.Inc()
		n.metrics.fetchGetBytes.Add(float64(len(b)))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != r.length {
			return nil, fmt.Errorf("chunk %s is %d bytes short of the indexed range [%d, %d): %w",
				r.chunkID, r.length-int64(len(b)), r.off, r.off+r.length, chunk.ErrCorrupt)
		}
		gaps := r.length
		for _, i := range r.batches {
			gaps -= plan[i].e.Length
		}
		res := rangeResult{data: make([][]byte, len(r.batches)), errs: make([]error, len(r.batches))}
		for j, i := range r.batches {
			e := plan[i].e
			data := b[e.Offset-r.off : e.Offset-r.off+e.Length : e.Offset-r.off+e.Length]
			if gaps > 0 {
				// Cached batches must not pin the gap bytes, which the
				// cache does not count.
				data = slices.Clone(data)
			}
			if err := chunk.CheckBatch(data); err != nil {
				res.errs[j] = fmt.Errorf("read chunk %s at byte %d: %w", e.ChunkID, e.Offset, err)
				continue
			}
			res.data[j] = data
			cache.put(cacheKey(e.ChunkID, e.Offset), data)
			if plan[i].ahead {
				n.metrics.readAheadBatches.Inc()
			}
		}
		return res, nil
	})
	if err != nil {
		err = readErr(r.chunkID, err)
		for _, i := range r.batches {
			plan[i].err = err
		}
		return
	}
	res := v.(rangeResult)
	for j, i := range r.batches {
		plan[i].data, plan[i].err = res.data[j], res.errs[j]
	}
}

// readErr maps a failed GET to the node's errors: a corrupt range stays
// corrupt, a missing chunk is reported as such, anything else is the
// store being unavailable.
func readErr(chunkID string, err error) error {
	switch {
	case errors.Is(err, chunk.ErrCorrupt):
		return fmt.Errorf("read chunk %s: %w", chunkID, err)
	case errors.Is(err, objectstore.ErrInvalidRange):
		return fmt.Errorf("read chunk %s: indexed range is past its end: %w: %w", chunkID, chunk.ErrCorrupt, err)
	case errors.Is(err, objectstore.ErrNotExist):
		return fmt.Errorf("chunk %s is indexed but not in the bucket: %w", chunkID, err)
	}
	return fmt.Errorf("read chunk %s: %w: %w", chunkID, ErrUnavailable, err)
}
