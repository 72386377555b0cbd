// The dispatch loop: it groups queued records into batches (one request
// in flight per partition, up to the max in flight) and expires records
// past their delivery timeout.

package client

import (
	"fmt"
	"time"
)

// run is the dispatch loop: it sends batches that are ready, and fails
// queued records that ran out of time.
func (p *Producer) run() {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-p.wake:
		case <-timer.C:
		case <-p.stop:
			timer.Stop()
			return
		}
		p.mu.Lock()
		next, failed := p.dispatchLocked(time.Now())
		p.mu.Unlock()
		p.report(failed)
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// dispatchLocked starts a request for every batch that is ready, while
// request slots are free, and fails queued records past their delivery
// timeout. It returns when it next has work to do by the clock (zero for
// never) and the futures it failed.
func (p *Producer) dispatchLocked(now time.Time) (next time.Time, failed []*Future) {
	soonest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if p.inflight >= p.cfg.maxInFlight && now.Before(p.nextCheck) {
		// Nothing can be sent until a request completes, which wakes
		// the loop; only the clock-driven work is due, at nextCheck.
		return p.nextCheck, nil
	}
	defer func() { p.nextCheck = next }()
	urgent := p.flushing > 0 || p.closed
	for i := range p.order {
		tq := p.order[(p.rr+i)%len(p.order)]
		for {
			ready := false
			var records int
			var bytes int64
			// Drop partitions that have emptied from nonEmpty, expire
			// old records, and see whether a batch is ready.
			keep := tq.nonEmpty[:0]
			for _, part := range tq.nonEmpty {
				q := tq.parts[part]
				for len(q.recs) > 0 && (q.recs[0].resolved || now.Sub(q.recs[0].enqueued) >= p.cfg.deliveryTimeout) {
					f := q.recs[0]
					q.recs[0] = nil
					q.recs = q.recs[1:]
					tq.unqueueLocked(q, f)
					if p.resolveLocked(f, Result{}, fmt.Errorf("produce to %s: %w: the record waited %v in the producer", tq.name, ErrDeliveryTimeout, now.Sub(f.enqueued).Round(time.Millisecond))) {
						failed = append(failed, f)
					}
				}
				if len(q.recs) == 0 {
					q.recs = nil
					q.queued = false
					continue
				}
				keep = append(keep, part)
				soonest(q.recs[0].enqueued.Add(p.cfg.deliveryTimeout))
				if q.busy {
					continue
				}
				if urgent || now.Sub(q.recs[0].enqueued) >= p.cfg.linger {
					ready = true
				} else {
					soonest(q.recs[0].enqueued.Add(p.cfg.linger))
				}
				if !ready {
					records += len(q.recs)
					bytes += q.bytes
					ready = bytes >= p.cfg.maxBatchBytes || records >= p.cfg.maxBatchRecords
				}
			}
			clear(tq.nonEmpty[len(keep):])
			tq.nonEmpty = keep
			if !ready || p.inflight >= p.cfg.maxInFlight {
				break
			}
			b := p.takeBatchLocked(tq)
			if b == nil {
				break
			}
			p.inflight++
			p.workers.Add(1)
			go p.send(b)
		}
	}
	if len(p.order) > 0 {
		p.rr = (p.rr + 1) % len(p.order)
	}
	return next, failed
}

// takeBatchLocked moves records of partitions with no request in flight
// into a batch, up to the batch limits, and marks those partitions busy.
func (p *Producer) takeBatchLocked(tq *topicQueue) *batch {
	b := &batch{topic: tq}
	n := len(tq.nonEmpty)
	full := false
	for i := 0; i < n && !full; i++ {
		part := tq.nonEmpty[(tq.rr+i)%n]
		q := tq.parts[part]
		if q.busy || len(q.recs) == 0 {
			continue
		}
		take := 0
		for _, f := range q.recs {
			if len(b.recs) > 0 && (b.bytes+f.size > p.cfg.maxBatchBytes || len(b.recs) >= p.cfg.maxBatchRecords) {
				full = true
				break
			}
			b.recs = append(b.recs, f)
			b.bytes += f.size
			tq.unqueueLocked(q, f)
			if d := f.enqueued.Add(p.cfg.deliveryTimeout); b.deadline.IsZero() || d.Before(b.deadline) {
				b.deadline = d
			}
			take++
		}
		if take == 0 {
			break
		}
		clear(q.recs[:take])
		q.recs = q.recs[take:]
		q.busy = true
		b.parts = append(b.parts, q)
		if part == tq.sticky {
			// The next record without a key starts a new batch,
			// elsewhere if it can.
			tq.sticky = -1
		}
	}
	tq.rr++
	if len(b.recs) == 0 {
		return nil
	}
	return b
}
