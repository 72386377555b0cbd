// Placing records on partitions, and learning each topic's partition
// count (DescribeTopic, cached per topic) for the records that wait for it.

package client

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/mambamq/mamba/internal/wire"
)

// placeLocked chooses f's partition and queues it there. It fails f, and
// returns false, when f names a partition the topic does not have.
func (p *Producer) placeLocked(tq *topicQueue, f *Future) bool {
	n := tq.partitions
	var part int32
	switch {
	case f.rec.Partition != nil:
		part = *f.rec.Partition
		if int(part) >= n {
			return p.resolveLocked(f, Result{}, fmt.Errorf("produce to %s: %w: partition %d, the topic has %d", tq.name, ErrPartitionNotFound, part, n))
		}
	case f.rec.Key != nil:
		part = wire.Partition(f.rec.Key, n)
	default:
		if tq.sticky < 0 {
			// Prefer a partition with no request in flight, so that the
			// batch can go at once.
			tq.sticky = int32(mathrand.N(n))
			for range min(n, 8) {
				if !tq.parts[tq.sticky].busy {
					break
				}
				tq.sticky = int32(mathrand.N(n))
			}
		}
		part = tq.sticky
	}
	f.partition = part
	q := tq.parts[part]
	wasEmpty := len(q.recs) == 0
	q.recs = append(q.recs, f)
	q.bytes += f.size
	if !q.queued {
		q.queued = true
		tq.nonEmpty = append(tq.nonEmpty, part)
	}
	full := tq.pendingBytes < p.cfg.maxBatchBytes && tq.pendingBytes+f.size >= p.cfg.maxBatchBytes ||
		tq.pendingRecords+1 == p.cfg.maxBatchRecords
	tq.pendingBytes += f.size
	tq.pendingRecords++
	// The loop needs to know when a partition gets its first record (to
	// start the linger timer) and when a batch fills up.
	if wasEmpty && !q.busy || full {
		p.wakeLocked()
	}
	return true
}

// unqueueLocked accounts for f leaving its partition queue q.
func (tq *topicQueue) unqueueLocked(q *partQueue, f *Future) {
	q.bytes -= f.size
	tq.pendingBytes -= f.size
	tq.pendingRecords--
}

// setPartitionsLocked records the topic's partition count and moves the
// records that waited for it to their partitions.
func (p *Producer) setPartitionsLocked(tq *topicQueue, n int) []*Future {
	var failed []*Future
	if n != len(tq.parts) {
		// The topic was recreated with another partition count: records
		// queued for partitions it no longer has cannot be sent.
		for i := n; i < len(tq.parts); i++ {
			for _, f := range tq.parts[i].recs {
				tq.unqueueLocked(tq.parts[i], f)
				if p.resolveLocked(f, Result{}, fmt.Errorf("produce to %s: %w: partition %d, the topic now has %d", tq.name, ErrPartitionNotFound, f.partition, n)) {
					failed = append(failed, f)
				}
			}
		}
		parts := make([]*partQueue, n)
		copy(parts, tq.parts)
		for i := range parts {
			if parts[i] == nil {
				parts[i] = &partQueue{}
			}
		}
		tq.parts = parts
		nonEmpty := tq.nonEmpty[:0]
		for _, part := range tq.nonEmpty {
			if int(part) < n {
				nonEmpty = append(nonEmpty, part)
			}
		}
		tq.nonEmpty = nonEmpty
		if int(tq.sticky) >= n {
			tq.sticky = -1
		}
	}
	tq.partitions = n
	waiting := tq.unresolved
	tq.unresolved = nil
	for _, f := range waiting {
		if !f.resolved && !p.placeLocked(tq, f) {
			failed = append(failed, f)
		}
	}
	return failed
}

// resolve fetches the partition count of tq's topic for the records
// waiting for it, retrying transient errors until they expire (or, while
// the server was never reached, until the client's connect timeout).
func (p *Producer) resolve(tq *topicQueue) {
	defer p.workers.Done()
	start := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.sendCtx, p.c.timeout)
		n, err := p.c.partitionCount(ctx, tq.name)
		cancel()
		var failed []*Future
		wait := p.c.retry.backoff(attempt)
		p.mu.Lock()
		done := true
		switch {
		case err == nil && n > 0:
			failed = p.setPartitionsLocked(tq, n)
		case p.sendCtx.Err() != nil:
			failed = p.failAllLocked(tq.unresolved, context.Cause(p.sendCtx))
			tq.unresolved = nil
		case err == nil:
			failed = p.failAllLocked(tq.unresolved, fmt.Errorf("produce to %s: describe topic answered no partitions", tq.name))
			tq.unresolved = nil
		case !IsRetryable(err):
			failed = p.failAllLocked(tq.unresolved, fmt.Errorf("produce to %s: %w", tq.name, err))
			tq.unresolved = nil
		case p.c.neverReached(err) && p.c.retryLeft(err, start, 0) <= wait:
			failed = p.failAllLocked(tq.unresolved, fmt.Errorf("produce to %s: %w", tq.name, exhausted(err, start)))
			tq.unresolved = nil
		default:
			// Fail what has run out of time; retry for the rest.
			now := time.Now()
			keep := tq.unresolved[:0]
			for _, f := range tq.unresolved {
				if f.resolved {
					continue
				}
				if now.Sub(f.enqueued) >= p.cfg.deliveryTimeout {
					if p.resolveLocked(f, Result{}, fmt.Errorf("produce to %s: %w: %w", tq.name, ErrDeliveryTimeout, err)) {
						failed = append(failed, f)
					}
					continue
				}
				keep = append(keep, f)
			}
			clear(tq.unresolved[len(keep):])
			tq.unresolved = keep
			done = len(keep) == 0
		}
		if done {
			tq.resolving = false
		}
		p.mu.Unlock()
		p.report(failed)
		if done {
			return
		}
		p.log.Warn("mamba: retrying topic metadata", "topic", tq.name, "attempt", attempt, "backoff", wait, "err", err)
		if sleep(p.sendCtx, wait) != nil {
			attempt = 0 // the next round fails the records with the close cause
		}
	}
}

// partitionCount describes topic with one attempt, without the client's
// retries (the producer retries itself), and returns its partition count.
func (c *Client) partitionCount(ctx context.Context, topic string) (int, error) {
	var out struct {
		Partitions int `json:"partitions"`
	}
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: apiPath("v1", "topics", topic)})
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if err := decodeJSON(resp, &out); err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	return out.Partitions, nil
}
