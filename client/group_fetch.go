// Fetching: one background long-poll per assigned partition, and Fetch
// and Records taking the buffered records from the partitions in turn.

package client

import (
	"context"
	"errors"
	"iter"
	"time"
)

// fetchLoop reads one assigned partition into its buffer until the
// partition is dropped.
func (gc *GroupConsumer) fetchLoop(ctx context.Context, gp *groupPartition, pos int64) {
	defer gc.wg.Done()
	tp := gp.tp
	attempt := 0
	var since time.Time // start of the current run of failures
	retry := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		if attempt == 0 {
			since = time.Now()
		}
		attempt++
		wait := gc.c.retry.delay(attempt, err)
		if !gc.c.keepRetrying(err, since, wait) {
			// Report it (a failure that is not transient, or one that
			// outlasted the retry timeout), and try again slowly: the
			// topic or the server may come back.
			wait = gc.c.retry.max
			gc.mu.Lock()
			if gc.parts[tp] == gp {
				gp.err = exhausted(err, since)
				gc.notifyLocked()
			}
			gc.mu.Unlock()
		}
		gc.c.log.Warn("mamba: group fetch failed, retrying", "group", gc.group, "partition", tp.String(), "offset", pos, "attempt", attempt, "retry_in", wait, "err", err)
		return sleep(ctx, wait) == nil
	}
	for ctx.Err() == nil {
		if pos < 0 {
			which := OffsetOldest
			if gc.cfg.startAtNewest {
				which = OffsetNewest
			}
			off, err := gc.c.resolveOffset(ctx, tp.Topic, tp.Partition, which)
			if err != nil {
				if !retry(err) {
					return
				}
				continue
			}
			pos = off
		}
		res, err := gc.c.fetch(ctx, tp.Topic, tp.Partition, pos, gc.cfg.fetch)
		if err != nil {
			if errors.Is(err, ErrOffsetOutOfRange) && ctx.Err() == nil {
				// Retention deleted records the group had not read:
				// carry on per the group's offset reset policy.
				gc.mu.Lock()
				policy := gc.reset
				gc.mu.Unlock()
				which := OffsetOldest
				if policy == OffsetResetLatest {
					which = OffsetNewest
				}
				off, rerr := gc.c.resolveOffset(ctx, tp.Topic, tp.Partition, which)
				if rerr != nil {
					if !retry(rerr) {
						return
					}
					continue
				}
				gc.c.log.Warn("mamba: group offset out of range, reset per the group's policy", "group", gc.group, "partition", tp.String(),
					"offset", pos, "offset_reset", policy, "reset_to", off)
				pos = off
				continue
			}
			if !retry(err) {
				return
			}
			continue
		}
		attempt = 0
		pos = res.nextOffset
		if len(res.records) == 0 {
			continue
		}
		gc.mu.Lock()
		if gc.parts[tp] != gp {
			gc.mu.Unlock()
			return
		}
		gp.buf = append(gp.buf, res.records...)
		drained := make(chan struct{})
		gp.drained = drained
		gc.notifyLocked()
		gc.mu.Unlock()
		select {
		case <-drained:
		case <-ctx.Done():
			return
		}
	}
}

// takeLocked removes up to max buffered records, from the partitions in
// turn, and marks them returned.
func (gc *GroupConsumer) takeLocked(max int) []ConsumedRecord {
	var withData int
	for _, gp := range gc.order {
		if len(gp.buf) > 0 {
			withData++
		}
	}
	if withData == 0 {
		return nil
	}
	share := max / withData
	if share == 0 {
		share = 1
	}
	var out []ConsumedRecord
	n := len(gc.order)
	for pass := 0; pass < 2 && len(out) < max; pass++ {
		for i := 0; i < n && len(out) < max; i++ {
			gp := gc.order[(gc.rr+i)%n]
			k := min(len(gp.buf), max-len(out))
			if pass == 0 {
				k = min(k, share)
			}
			if k == 0 {
				continue
			}
			out = append(out, gp.buf[:k]...)
			clear(gp.buf[:k])
			gp.buf = gp.buf[k:]
			gp.consumed = out[len(out)-1].Offset + 1
			if len(gp.buf) == 0 {
				gp.buf = nil
				if gp.drained != nil {
					close(gp.drained)
					gp.drained = nil
				}
			}
		}
	}
	gc.rr++
	return out
}

// takeErrLocked returns, once, a fetch error of some partition.
func (gc *GroupConsumer) takeErrLocked() error {
	for _, gp := range gc.order {
		if err := gp.err; err != nil {
			gp.err = nil
			return err
		}
	}
	return nil
}

// poll returns up to max records, waiting up to the max wait for some.
func (gc *GroupConsumer) poll(ctx context.Context, max int) ([]ConsumedRecord, error) {
	if err := gc.ensureJoined(ctx); err != nil {
		return nil, err
	}
	// The timers are made only when the call has to wait.
	var timeout <-chan time.Time
	var tick <-chan time.Time
	for {
		gc.runCallbacks()
		gc.releaseRevoked(ctx)
		gc.autoCommit(ctx)
		gc.mu.Lock()
		if gc.closed {
			gc.mu.Unlock()
			return nil, ErrClosed
		}
		if recs := gc.takeLocked(max); len(recs) > 0 {
			gc.mu.Unlock()
			return recs, nil
		}
		if err := gc.takeErrLocked(); err != nil {
			gc.mu.Unlock()
			return nil, err
		}
		if gc.member == "" && gc.joinErr != nil {
			err := gc.joinErr
			gc.mu.Unlock()
			return nil, err
		}
		if gc.notify == nil {
			gc.notify = make(chan struct{})
		}
		ch := gc.notify
		gc.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(gc.cfg.fetch.maxWait)
			defer t.Stop()
			timeout = t.C
			if gc.cfg.autoCommit > 0 {
				t := time.NewTicker(gc.cfg.autoCommit)
				defer t.Stop()
				tick = t.C
			}
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timeout:
			gc.runCallbacks()
			return nil, nil
		}
	}
}

// Fetch returns records from the member's partitions, taking from each in
// turn, up to the max records (1,000 when WithMaxRecords is not given).
// It joins the group on first use, and runs the assignment callbacks. It
// waits up to the max wait for records and may return none. Returned
// records count as consumed for Commit.
func (gc *GroupConsumer) Fetch(ctx context.Context) ([]ConsumedRecord, error) {
	max := gc.cfg.fetch.maxRecords
	if max <= 0 {
		max = 1000
	}
	return gc.poll(ctx, max)
}

// Records iterates over records of the member's partitions without end,
// following assignment changes. Each record counts as consumed for
// Commit once it is yielded. Retryable errors are retried with backoff,
// each retry logged at warn level, for up to the client's retry timeout
// (WithRetryTimeout), or its connect timeout while the server was never
// reached; any other error, or one that outlasts that bound, is yielded
// once and ends the iteration. The iteration also ends, without an
// error, when ctx ends or after Close.
func (gc *GroupConsumer) Records(ctx context.Context) iter.Seq2[ConsumedRecord, error] {
	return func(yield func(ConsumedRecord, error) bool) {
		attempt := 0
		var since time.Time // start of the current run of failures
		for ctx.Err() == nil {
			recs, err := gc.poll(ctx, 1)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, ErrClosed) {
					return
				}
				if attempt == 0 {
					since = time.Now()
				}
				attempt++
				wait := gc.c.retry.backoff(attempt)
				if gc.c.keepRetrying(err, since, wait) {
					gc.c.log.Warn("mamba: group poll failed, retrying", "group", gc.group, "attempt", attempt, "backoff", wait, "err", err)
					if sleep(ctx, wait) != nil {
						return
					}
					continue
				}
				yield(ConsumedRecord{}, exhausted(err, since))
				return
			}
			attempt = 0
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}
