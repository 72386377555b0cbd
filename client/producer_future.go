// Futures: how a produced record's outcome is settled (once) and reported
// to the handlers.

package client

import (
	"time"
)

// Future is the outcome of one record produced with ProduceAsync or
// TryProduce. Every future is done eventually: acknowledged, failed, or,
// when Close gives up waiting, failed with Close's context error.
type Future struct {
	rec       Record
	size      int64
	seq       uint64
	enqueued  time.Time
	partition int32
	// sync futures belong to Produce, which returns their error itself.
	sync       bool
	prev, next *Future
	resolved   bool // guarded by Producer.mu
	done       chan struct{}
	res        Result
	err        error
}

// Done is closed once the future has its result or error.
func (f *Future) Done() <-chan struct{} { return f.done }

// Err waits until the future is done and returns its error: nil when the
// record was acknowledged.
func (f *Future) Err() error {
	<-f.done
	return f.err
}

// Result waits until the future is done and returns where the record was
// stored, or why it was not.
func (f *Future) Result() (Result, error) {
	<-f.done
	return f.res, f.err
}

func (p *Producer) failedFuture(rec Record, err error) *Future {
	f := &Future{rec: rec, done: make(chan struct{}), resolved: true, err: err}
	close(f.done)
	return f
}

// resolveLocked settles f once: later calls do nothing and return
// false. It frees f's buffer space and wakes whoever waits for space or
// progress. It returns true when it failed f now, which the caller then
// reports.
func (p *Producer) resolveLocked(f *Future, res Result, err error) bool {
	if f.resolved {
		return false
	}
	f.resolved = true
	f.res, f.err = res, err
	close(f.done)
	p.buffered -= f.size
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		p.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		p.tail = f.prev
	}
	f.prev, f.next = nil, nil
	if p.spaceFreed != nil {
		close(p.spaceFreed)
		p.spaceFreed = nil
	}
	if p.progress != nil {
		close(p.progress)
		p.progress = nil
	}
	return err != nil
}

func (p *Producer) failAllLocked(fs []*Future, err error) []*Future {
	var failed []*Future
	for _, f := range fs {
		if p.resolveLocked(f, Result{}, err) {
			failed = append(failed, f)
		}
	}
	return failed
}

// report calls the error handler for failed futures of ProduceAsync and
// TryProduce. It must be called without p.mu.
func (p *Producer) report(fs []*Future) {
	if p.cfg.onError == nil || len(fs) == 0 {
		return
	}
	p.handlerMu.Lock()
	defer p.handlerMu.Unlock()
	for _, f := range fs {
		if !f.sync && f.err != nil {
			p.cfg.onError(f.rec, f.err)
		}
	}
}

// reportAcked calls the ack handler for each of fs.
func (p *Producer) reportAcked(fs []*Future) {
	if len(fs) == 0 {
		return
	}
	p.handlerMu.Lock()
	defer p.handlerMu.Unlock()
	for _, f := range fs {
		p.cfg.onAck(f.rec, f.res)
	}
}
