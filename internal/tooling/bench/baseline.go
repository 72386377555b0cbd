package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for BaselineConfig fields left at zero.
const (
	DefaultMessageSize = 1024
	DefaultProducers   = 4
	DefaultDuration    = 10 * time.Second
)

// progressInterval is how often BaselineConfig.Progress is called.
const progressInterval = 250 * time.Millisecond

// abortAfterErrors is how many failed sends, with not one acknowledged, make
// a run give up early: the system is down or misconfigured, and waiting out
// the window would only repeat the same error.
const abortAfterErrors = 10

// BaselineConfig is shared by the runners of the systems Mamba is compared
// with (RunMinIOPut, RunJetStream, RunRedisStreams). Zero fields take the
// Default… values, except where a field says otherwise.
type BaselineConfig struct {
	// MessageSize is the payload of each record in bytes.
	MessageSize int
	// Producers is the number of concurrent producers, each a goroutine
	// with its own connection or client. (RunMinIOPut ignores it: its
	// concurrency is InFlight.)
	Producers int
	// Duration is the measured window.
	Duration time.Duration
	// Warmup runs before the measured window; what is acknowledged during
	// it is discarded. Zero means no warm-up.
	Warmup time.Duration
	// Rate is the target in records per second over all producers; zero
	// runs as fast as the system acknowledges.
	Rate float64
	// InFlight bounds the work outstanding: per producer, unacknowledged
	// publishes (JetStream) or pipelined commands (Redis); for MinIO PUTs,
	// objects in flight in total. Zero means the runner's default.
	InFlight int
	// Progress, if set, is called about every 250 ms, and once
	// more at the end, with the cumulative records and bytes acknowledged
	// in the measured window (zero during warm-up). Calls come from one
	// goroutine at a time and none after the runner returns.
	Progress func(records, bytes int64)
}

// withDefaults fills zero fields; inFlight is the runner's default InFlight.
func (c BaselineConfig) withDefaults(inFlight int) BaselineConfig {
	if c.MessageSize == 0 {
		c.MessageSize = DefaultMessageSize
	}
	if c.Producers == 0 {
		c.Producers = DefaultProducers
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.InFlight == 0 {
		c.InFlight = inFlight
	}
	return c
}

// Validate reports every bad field at once.
func (c BaselineConfig) Validate() error {
	var errs []error
	if c.MessageSize < 0 {
		errs = append(errs, fmt.Errorf("message size %d is negative", c.MessageSize))
	}
	if c.Producers < 0 {
		errs = append(errs, fmt.Errorf("producers %d is negative", c.Producers))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("duration %v is negative", c.Duration))
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warm-up %v is negative", c.Warmup))
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %v is not a finite, non-negative number of records per second", c.Rate))
	}
	if c.InFlight < 0 {
		errs = append(errs, fmt.Errorf("in flight %d is negative", c.InFlight))
	}
	return errors.Join(errs...)
}

// randomPayload returns n incompressible bytes. One payload is generated per
// run and sent again and again: none of the systems compared deduplicates
// or compresses, so reuse costs them nothing it would not cost anyway.
func randomPayload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// tally accounts for one run: what was acknowledged inside the measured
// window [start, end), the latency of each of those acknowledgements, and
// the failures.
//
// Whether an acknowledgement counts is decided by the time it arrived, not
// by resetting counters when the warm-up ends: a reset would race with
// acknowledgements being recorded at that instant, and a timestamp cannot.
// So, once every sender has returned, lat's count == samples and
// records(bytes) are over the very same acknowledgements.
type tally struct {
	recordSize int64
	start, end time.Time
	stopped    time.Time // when the senders stopped: end, or earlier if cancelled
	lat        *Recorder

	samples atomic.Int64 // acknowledgements (latency samples) in the window
	bytes   atomic.Int64 // bytes they acknowledged
	acked   atomic.Int64 // acknowledgements at any time, warm-up included
	errs    atomic.Int64

	cancel   context.CancelFunc // ends the run early
	mu       sync.Mutex
	firstErr error
	aborted  error // why the run ended early, if it did
}

// ack records one acknowledgement that arrived at `at` for a send whose
// latency is measured from `sent`, covering bytes of payload.
func (t *tally) ack(sent, at time.Time, bytes int64) {
	t.acked.Add(1)
	if at.Before(t.start) || !at.Before(t.end) {
		return
	}
	t.lat.Record(at.Sub(sent))
	t.samples.Add(1)
	t.bytes.Add(bytes)
}

// fail counts a failed send, and ends the run once abortAfterErrors sends
// have failed without one succeeding. Once the run is over (ctx done, or
// the window's end passed: a client may give up on the deadline a moment
// before ctx reports it) a failure is the run being stopped, not the system
// failing, and is not counted.
func (t *tally) fail(ctx context.Context, err error) {
	if ctx.Err() != nil || !time.Now().Before(t.end) {
		return
	}
	n := t.errs.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.firstErr == nil {
		t.firstErr = err
	}
	if n >= abortAfterErrors && t.acked.Load() == 0 && t.aborted == nil {
		t.aborted = fmt.Errorf("%d sends failed and none was acknowledged; first error: %w", n, t.firstErr)
		t.cancel()
	}
}

// records converts acknowledged bytes into records of recordSize; for
// MinIO PUTs that is the number of records the objects would have held.
func (t *tally) records(bytes int64) int64 { return bytes / t.recordSize }

// sender is what one producer of a run gets: its pacing and the run's
// accounting.
type sender struct {
	id int
	*tally
	pacer
}

// drive runs n senders, each a goroutine running produce, for
// cfg.Warmup+cfg.Duration, or until ctx ends or the run aborts, and returns
// the run's accounting. rate is the target in sends per second over all
// senders (0: unpaced). produce must return once its ctx is done; it
// reports through its sender. Everything drive starts has returned when it
// returns. The error is ctx's if it ended the run, or why the run aborted.
func drive(ctx context.Context, cfg BaselineConfig, n int, rate float64, produce func(ctx context.Context, s *sender)) (*tally, error) {
	begin := time.Now()
	tl := &tally{
		recordSize: int64(cfg.MessageSize),
		start:      begin.Add(cfg.Warmup),
		lat:        NewRecorder(),
	}
	tl.end = tl.start.Add(cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, tl.end)
	defer cancel()
	tl.cancel = cancel

	var wg sync.WaitGroup
	for i := range n {
		s := &sender{id: i, tally: tl, pacer: newPacer(begin, rate, i, n)}
		wg.Go(func() { produce(runCtx, s) })
	}
	report := func() {
		b := tl.bytes.Load()
		cfg.Progress(tl.records(b), b)
	}
	if cfg.Progress != nil {
		wg.Go(func() {
			tick := time.NewTicker(progressInterval)
			defer tick.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-tick.C:
					report()
				}
			}
		})
	}
	wg.Wait()
	tl.stopped = time.Now()
	if tl.stopped.After(tl.end) {
		tl.stopped = tl.end
	}
	if cfg.Progress != nil {
		report()
	}
	if err := ctx.Err(); err != nil {
		return tl, err
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl, tl.aborted
}

// result turns the accounting into a SystemResult; the first error, if
// any, is added to notes. A window in which nothing was acknowledged is an
// error: a row of zeros would read as a measurement.
func (t *tally) result(system, durability, notes string) (SystemResult, error) {
	bytes := t.bytes.Load()
	r := SystemResult{
		System:     system,
		Durability: durability,
		Produce:    NewThroughput(t.records(bytes), bytes, max(t.stopped.Sub(t.start), 0)),
		Ack:        t.lat.Summary(),
		Errors:     t.errs.Load(),
		Notes:      notes,
	}
	t.mu.Lock()
	first := t.firstErr
	t.mu.Unlock()
	if first != nil {
		r.Notes += "; first error: " + first.Error()
	}
	if t.samples.Load() == 0 {
		if first != nil {
			return r, fmt.Errorf("%s: nothing acknowledged in the measured window (%d errors; first: %w)", system, r.Errors, first)
		}
		return r, fmt.Errorf("%s: nothing acknowledged in the measured window", system)
	}
	return r, nil
}

// pacer schedules one sender's sends at a fixed rate.
//
// Sends are scheduled by their intended time, origin + n/rate, not by
// sleeping a fixed interval after each send, so time spent sending does not
// slow the rate down; a sender that falls behind sends back to back until it
// catches up. Latency of a paced send is measured from its intended time,
// not from when it was actually handed to the client: when the system
// stalls, sends that should have gone out during the stall are charged for
// the wait, instead of being silently postponed (coordinated omission,
// which would hide exactly the stalls a benchmark is for).
type pacer struct {
	origin time.Time
	perSec float64 // sends per second; 0: unpaced
	n      int64   // sends scheduled so far
	timer  *time.Timer
}

// newPacer paces sender i of n at rate/n sends per second. Senders are
// offset by 1/rate from each other so that their sends interleave instead
// of arriving in bursts of n.
func newPacer(begin time.Time, rate float64, i, n int) pacer {
	if rate <= 0 {
		return pacer{}
	}
	return pacer{
		origin: begin.Add(time.Duration(float64(i) / rate * float64(time.Second))),
		perSec: rate / float64(n),
	}
}

func (p *pacer) due() time.Time {
	return p.origin.Add(time.Duration(float64(p.n) / p.perSec * float64(time.Second)))
}

// pace waits until the next send is due and returns the time its latency
// is measured from. For an unpaced sender that is the zero time, and the
// caller stamps it with stamp once the send has a slot in the window. ok is
// false when ctx ended first.
func (p *pacer) pace(ctx context.Context) (sent time.Time, ok bool) {
	if p.perSec == 0 {
		return time.Time{}, ctx.Err() == nil
	}
	due := p.due()
	p.n++
	if d := time.Until(due); d > 0 {
		if p.timer == nil {
			p.timer = time.NewTimer(d)
		} else {
			p.timer.Reset(d)
		}
		select {
		case <-ctx.Done():
			p.timer.Stop()
			return time.Time{}, false
		case <-p.timer.C:
		}
	}
	return due, ctx.Err() == nil
}

// ready returns the next send's time like pace if it is already due, so
// that a pipelining sender can batch every send due now without waiting.
// An unpaced sender is always ready.
func (p *pacer) ready(now time.Time) (sent time.Time, ok bool) {
	if p.perSec == 0 {
		return time.Time{}, true
	}
	due := p.due()
	if due.After(now) {
		return time.Time{}, false
	}
	p.n++
	return due, true
}

// stamp returns sent, or now if sent is zero (an unpaced send).
func stamp(sent time.Time) time.Time {
	if sent.IsZero() {
		return time.Now()
	}
	return sent
}

// closeOnDone calls closeFn once ctx is done, to unblock a client call that
// does not watch ctx itself. The returned stop must be called; it returns
// once closeFn has returned, if it was called, so nothing outlives the
// caller.
func closeOnDone(ctx context.Context, closeFn func()) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			closeFn()
		case <-quit:
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
