package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// Fetch limits and defaults.
const (
	DefaultFetchMaxRecords = 1000
	MaxFetchRecords        = 10000
	DefaultFetchMaxBytes   = 1 << 20
	MaxFetchBytes          = 32 << 20
	// fetchIndexEntries is how many index entries one fetch looks up.
	fetchIndexEntries = 64
	// recheckInterval bounds a long-poll's sleep between index checks, in
	// case a commit announcement was lost while Redis reconnected.
	recheckInterval = time.Second
)

// Fetch returns committed records of one partition from req.Offset on. At
// the high watermark it waits up to req.Wait (capped by MaxWait) for a
// commit on any node.
func (n *Node) Fetch(ctx context.Context, req FetchRequest) (FetchResult, error) {
	if req.Offset < 0 {
		return FetchResult{}, fmt.Errorf("offset %d is negative: %w", req.Offset, ErrOffsetOutOfRange)
	}
	if req.Partition < 0 {
		return FetchResult{}, fmt.Errorf("partition %d: %w", req.Partition, ErrPartitionNotFound)
	}
	if req.MaxRecords <= 0 {
		req.MaxRecords = DefaultFetchMaxRecords
	}
	req.MaxRecords = min(req.MaxRecords, MaxFetchRecords)
	if req.MaxBytes <= 0 {
		req.MaxBytes = DefaultFetchMaxBytes
	}
	req.MaxBytes = min(req.MaxBytes, MaxFetchBytes)
	deadline := n.now().Add(min(max(req.Wait, 0), n.cfg.MaxWait))
	for {
		// Register before looking, so a commit landing between the
		// lookup and the wait still wakes this fetch.
		wake := n.waiters.add(req.Topic, req.Partition)
		entries, st, err := n.meta.Lookup(ctx, req.Topic, req.Partition, req.Offset, fetchIndexEntries)
		res := FetchResult{NextOffset: req.Offset, HighWatermark: st.HighWatermark, LogStartOffset: st.LogStartOffset}
		if err != nil || len(entries) > 0 {
			n.waiters.remove(req.Topic, req.Partition, wake)
			if err != nil {
				return res, metaErr(err)
			}
			return n.read(ctx, req, entries, res)
		}
		remaining := deadline.Sub(n.now())
		if remaining <= 0 {
			n.waiters.remove(req.Topic, req.Partition, wake)
			return res, nil
		}
		t := time.NewTimer(min(remaining, recheckInterval))
		stopping := false
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		case <-n.stopping:
			stopping = true
		}
		t.Stop()
		n.waiters.remove(req.Topic, req.Partition, wake)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if stopping {
			return res, nil // a draining node answers long-polls now
		}
	}
}

// read decodes the entries' batches and collects records from req.Offset
// on, within the request's limits (but at least one record).
func (n *Node) read(ctx context.Context, req FetchRequest, entries []metadata.IndexEntry, res FetchResult) (FetchResult, error) {
	bytes := 0
	for _, e := range entries {
		data, err := n.batchBytes(ctx, e.ChunkID, e.Offset, e.Length)
		if err != nil {
			if len(res.Records) > 0 {
				break // return what we have; the next fetch retries
			}
			return res, err
		}
		// batchBytes checked the CRC when the batch entered the node.
		batch, err := chunk.DecodeCheckedBatch(data)
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

func (n *Node) done(res FetchResult, bytes int) FetchResult {
	n.metrics.recordsOut.Add(float64(len(res.Records)))
	n.metrics.bytesOut.Add(float64(bytes))
	return res
}

// batchBytes returns one batch, from the cache or with one ranged GET.
// Concurrent fetches of the same batch share one GET. The batch's header
// and CRC have been checked: by the Writer for batches this node wrote,
// by CheckBatch once for batches it read; so every fetch of a cached
// batch need not checksum it again.
func (n *Node) batchBytes(ctx context.Context, chunkID string, off, length int64) ([]byte, error) {
	key := cacheKey(chunkID, off)
	if b, ok := n.cache.get(key); ok {
		n.metrics.cacheRequests.WithLabelValues("hit").Inc()
		return b, nil
	}
	n.metrics.cacheRequests.WithLabelValues("miss").Inc()
	v, err, _ := n.gets.Do(key, func() (any, error) {
		b, err := n.bucket.ReadChunkRange(context.WithoutCancel(ctx), chunkID, off, length)
		if err != nil {
			return nil, err
		}
		if err := chunk.CheckBatch(b); err != nil {
			return nil, errCorruptBatch{err}
		}
		n.cache.put(key, b)
		return b, nil
	})
	if err != nil {
		if corrupt, ok := errors.AsType[errCorruptBatch](err); ok {
			return nil, fmt.Errorf("read chunk %s at byte %d: %w", chunkID, off, corrupt.err)
		}
		if errors.Is(err, objectstore.ErrNotExist) {
			return nil, fmt.Errorf("chunk %s is indexed but not in the bucket: %w", chunkID, err)
		}
		return nil, fmt.Errorf("read chunk %s: %w: %w", chunkID, ErrUnavailable, err)
	}
	return v.([]byte), nil
}

// errCorruptBatch marks a batch that failed its check, so that it is
// reported as corrupt rather than as an unavailable store.
type errCorruptBatch struct{ err error }

func (e errCorruptBatch) Error() string { return e.err.Error() }

// waiters are the fetches parked at a partition's high watermark.
type waiters struct {
	mu sync.Mutex
	m  map[waitKey]map[chan struct{}]struct{}
}

type waitKey struct {
	topic     string
	partition int32
}

func newWaiters() *waiters { return &waiters{m: make(map[waitKey]map[chan struct{}]struct{})} }

func (w *waiters) add(topic string, p int32) chan struct{} {
	ch := make(chan struct{})
	k := waitKey{topic, p}
	w.mu.Lock()
	set := w.m[k]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		w.m[k] = set
	}
	set[ch] = struct{}{}
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(topic string, p int32, ch chan struct{}) {
	k := waitKey{topic, p}
	w.mu.Lock()
	if set := w.m[k]; set != nil {
		delete(set, ch)
		if len(set) == 0 {
			delete(w.m, k)
		}
	}
	w.mu.Unlock()
}

// wake releases every fetch waiting on the partition.
func (w *waiters) wake(topic string, p int32) {
	k := waitKey{topic, p}
	w.mu.Lock()
	set := w.m[k]
	delete(w.m, k)
	w.mu.Unlock()
	for ch := range set {
		close(ch)
	}
}

// MaxWait is the longest a Fetch waits at the high watermark
// (Config.MaxWait); the HTTP layer clamps wait_ms to it.
func (n *Node) MaxWait() time.Duration { return n.cfg.MaxWait }
