package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mambamq/mamba/internal/membudget"
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
	// recheckInterval bounds a long-poll's sleep between index checks.
	// Commit announcements wake long-polls, and so does the commit
	// subscription whenever announcements may have been missed: after a
	// reconnect, and every second while it hears nothing, not even its own
	// beat (metadata.StaleAfter). This timer is the last resort (an
	// announcement go-redis dropped on a stalled node); it costs a Redis
	// lookup per waiting fetch per interval.
	recheckInterval = 5 * time.Second
	// overCapWait is how long a fetch past MaxLongPolls waits, without a
	// slot or a wake-up, before it answers what there is (nothing).
	overCapWait = time.Second
	// longPollBytes is what one parked long-poll reserves from the memory
	// budget: its goroutine's stack (8 KiB at least), its connection's
	// read and write buffers (4 KiB each) held while it waits, and its
	// timer, wake-up registration and request.
	longPollBytes = 16 << 10
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
	parked := false // holds one of MaxLongPolls and longPollBytes of the budget
	parking := n.budget.Start(membudget.LongPoll)
	defer func() {
		if parked {
			parking.Release()
			n.metrics.longPolls.Set(float64(n.longPolls.Add(-1)))
		}
	}()
	for {
		// Register before looking, so a commit landing between the
		// lookup and the wait still wakes this fetch.
		wake := n.waiters.add(req.Topic, req.Partition)
		entries, st, err := n.lookup(ctx, req.Topic, req.Partition, req.Offset, fetchIndexEntries)
		res := FetchResult{NextOffset: req.Offset, HighWatermark: st.HighWatermark, LogStartOffset: st.LogStartOffset}
		if err != nil || len(entries) > 0 {
			n.waiters.remove(req.Topic, req.Partition, wake)
			if err != nil {
				return res, metaErr(err)
			}
			res, err = n.read(ctx, req, entries, res)
			if err != nil {
				res.Memory.Release()
				res.Memory = nil
			}
			if errors.Is(err, objectstore.ErrNotExist) {
				return n.recheckGone(ctx, req, res, err)
			}
			return res, err
		}
		remaining := deadline.Sub(n.now())
		if remaining <= 0 {
			n.waiters.remove(req.Topic, req.Partition, wake)
			return res, nil
		}
		if !parked {
			v := n.longPolls.Add(1)
			if v > int64(n.cfg.MaxLongPolls) || !parking.Grow(longPollBytes) {
				// Every slot is taken, or the memory budget is full:
				// answer what there is (nothing) after a short plain
				// wait, without a slot or a wake-up, and let the client
				// ask again.
				n.longPolls.Add(-1)
				n.waiters.remove(req.Topic, req.Partition, wake)
				n.metrics.longPollsRefused.Inc()
				t := time.NewTimer(min(remaining, overCapWait))
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
					return res, ctx.Err()
				case <-n.stopping:
				}
				return res, nil
			}
			n.metrics.longPolls.Set(float64(v))
			parked = true
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

// recheckGone answers a fetch whose first batch's chunk was not in the
// bucket: retention trimmed the entry after the lookup and garbage
// collection deleted the chunk. A second lookup tells: below the log
// start offset now, the fetch is out of range (as if it had come a moment
// later); otherwise an indexed chunk is missing, which is a real error.
func (n *Node) recheckGone(ctx context.Context, req FetchRequest, res FetchResult, readErr error) (FetchResult, error) {
	_, st, err := n.lookup(ctx, req.Topic, req.Partition, req.Offset, 1)
	if !errors.Is(err, metadata.ErrOffsetOutOfRange) || req.Offset >= st.LogStartOffset {
		if err != nil && !errors.Is(err, metadata.ErrOffsetOutOfRange) {
			return res, metaErr(err)
		}
		return res, readErr
	}
	n.metrics.fetchGone.Inc()
	res.HighWatermark, res.LogStartOffset = st.HighWatermark, st.LogStartOffset
	return res, fmt.Errorf("offset %d of %s/%d was trimmed while it was read (log start is now %d): %w",
		req.Offset, req.Topic, req.Partition, st.LogStartOffset, ErrOffsetOutOfRange)
}

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

// wakeAll releases every waiting fetch, to look again: the commit
// subscription was made again after a reconnect.
func (w *waiters) wakeAll() {
	w.mu.Lock()
	m := w.m
	w.m = make(map[waitKey]map[chan struct{}]struct{})
	w.mu.Unlock()
	for _, set := range m {
		for ch := range set {
			close(ch)
		}
	}
}

// MaxWait is the longest a Fetch waits at the high watermark
// (Config.MaxWait); the HTTP layer clamps wait_ms to it.
func (n *Node) MaxWait() time.Duration { return n.cfg.MaxWait }
