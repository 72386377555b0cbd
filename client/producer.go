package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mambamq/mamba/internal/wire"
)

// Defaults of the producer options.
const (
	// DefaultLinger is how long a record may wait for others to share its
	// request.
	DefaultLinger = 5 * time.Millisecond
	// DefaultMaxBatchBytes bounds the records (keys, values and headers)
	// of one produce request: 4 MiB. A partition has one request in
	// flight and a durable ack takes up to a flush interval plus a PUT
	// (a few hundred milliseconds), so one partition takes at most one
	// batch per ack from a producer: 4 MiB per ack is some 10 MiB/s.
	// Large requests also fill the node's chunks (8 MiB) sooner, which
	// seals them before the flush interval and shortens the ack.
	DefaultMaxBatchBytes = 4 << 20
	// DefaultMaxBatchRecords bounds the records of one produce request.
	DefaultMaxBatchRecords = 10_000
	// DefaultMaxBufferedBytes bounds the records a producer holds before
	// they are acknowledged: 64 MiB.
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultMaxInFlight is how many produce requests a producer has
	// outstanding at once: enough that a producer writing to many
	// partitions keeps going while earlier requests wait for their
	// durable acks. (At most one per partition is in flight anyway.)
	DefaultMaxInFlight = 16
	// DefaultDeliveryTimeout bounds the time from producing a record to
	// its acknowledgement, retries included.
	DefaultDeliveryTimeout = 2 * time.Minute
)

// recordOverhead is what the producer counts for one record on top of
// its key, value and headers, for the batch and buffer limits: roughly
// its framing in a request.
const recordOverhead = 16

// ProducerOpt configures a Producer.
type ProducerOpt func(*producerConfig)

type producerConfig struct {
	linger          time.Duration
	maxBatchBytes   int64
	maxBatchRecords int
	maxBuffered     int64
	maxInFlight     int
	deliveryTimeout time.Duration
	maxAttempts     int
	ackBuffered     bool
	json            bool
	onError         func(Record, error)
	onAck           func(Record, Result)
	errs            []error
}

// WithLinger sets how long a record may wait for more records to share
// its request. Zero sends as soon as a request slot is free. Default
// DefaultLinger.
func WithLinger(d time.Duration) ProducerOpt {
	return func(c *producerConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithLinger: %v is negative", d))
		}
		c.linger = d
	}
}

// WithMaxBatchBytes bounds the bytes of records (keys, values, headers)
// in one produce request; a record larger than this is refused with
// ErrPayloadTooLarge. The node refuses requests over 16 MiB and records
// over 1 MiB by default. Default DefaultMaxBatchBytes.
func WithMaxBatchBytes(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBatchBytes: %d is below 1", n))
		}
		c.maxBatchBytes = int64(n)
	}
}

// WithMaxBatchRecords bounds the records in one produce request. Default
// DefaultMaxBatchRecords.
func WithMaxBatchRecords(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 || n > wire.MaxRecords {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBatchRecords: %d is not in [1, %d]", n, wire.MaxRecords))
		}
		c.maxBatchRecords = n
	}
}

// WithMaxBufferedBytes bounds the bytes of records the producer holds
// until they are acknowledged or failed. When it is full, Produce and
// ProduceAsync block and TryProduce fails with ErrBufferFull. It must be
// at least the max batch bytes. Default DefaultMaxBufferedBytes.
func WithMaxBufferedBytes(n int64) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxBufferedBytes: %d is below 1", n))
		}
		c.maxBuffered = n
	}
}

// WithMaxInFlight bounds the produce requests outstanding at once, over
// all topics. Default DefaultMaxInFlight.
func WithMaxInFlight(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxInFlight: %d is below 1", n))
		}
		c.maxInFlight = n
	}
}

// WithDeliveryTimeout bounds how long a record may take from being
// produced to being acknowledged, waiting in the buffer and retries
// included. A record not acknowledged in time fails with an error
// wrapping ErrDeliveryTimeout and the last error. Default
// DefaultDeliveryTimeout.
func WithDeliveryTimeout(d time.Duration) ProducerOpt {
	return func(c *producerConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithDeliveryTimeout: %v is not positive", d))
		}
		c.deliveryTimeout = d
	}
}

// WithProduceAttempts bounds the attempts of one produce request, on top
// of the delivery timeout. Zero, the default, retries until the delivery
// timeout.
func WithProduceAttempts(n int) ProducerOpt {
	return func(c *producerConfig) {
		if n < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithProduceAttempts: %d is negative", n))
		}
		c.maxAttempts = n
	}
}

// WithAckBuffered asks the node to answer as soon as the records are in
// its memory (ack=buffered) instead of once they are durable: a node
// crash before its next flush loses them, and nobody is told. Offsets are
// then unknown and every Result has Offset -1. Off by default; use it
// only when losing records is acceptable.
func WithAckBuffered() ProducerOpt {
	return func(c *producerConfig) { c.ackBuffered = true }
}

// WithJSON sends produce requests as JSON (with base64 bytes) instead of
// the binary content type. It costs more on both ends; it exists for
// proxies that only pass JSON. Header names must then be unique within a
// record, and the node stores them sorted by name.
func WithJSON() ProducerOpt {
	return func(c *producerConfig) { c.json = true }
}

// WithErrorHandler calls fn for every record produced with ProduceAsync
// or TryProduce that fails, in addition to its future's error. Calls are
// made one at a time from the producer's goroutines; fn must not block
// for long, nor call the producer's Flush or Close.
func WithErrorHandler(fn func(Record, error)) ProducerOpt {
	return func(c *producerConfig) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithErrorHandler: nil handler"))
		}
		c.onError = fn
	}
}

// WithAckHandler calls fn for every record produced with ProduceAsync or
// TryProduce once it is acknowledged, with where it was stored, in
// addition to completing its future: the callback style of producing, with
// no goroutine waiting per record. Calls are made one at a time from the
// producer's goroutines, a request's records in their order; fn must not
// block for long (it holds up other acknowledgements), nor call the
// producer's Flush or Close.
func WithAckHandler(fn func(Record, Result)) ProducerOpt {
	return func(c *producerConfig) {
		if fn == nil {
			c.errs = append(c.errs, errors.New("WithAckHandler: nil handler"))
		}
		c.onAck = fn
	}
}

// Producer sends records to topics in batches. It is safe for concurrent
// use.
//
// Records are grouped per topic into produce requests of up to the max
// batch bytes and records, each sent once it is full or its oldest
// record has waited the linger time. Partitions are chosen on the
// client: a record's Partition if set, else the FNV-1a hash (wire.Partition) of its key modulo the
// topic's partition count (fetched with DescribeTopic and cached), else,
// for a record without a key, one partition per batch ("sticky"), picked
// at random.
//
// # Ordering
//
// A partition has at most one request in flight. A request is retried,
// with the same records and the same Idempotency-Key, until it succeeds,
// fails for good or runs out of time, and only then may the next records
// of its partitions be sent; other partitions and topics carry on in
// parallel, up to the max in-flight requests. So records of one partition
// are stored in the order they were produced, and a retry never
// duplicates a record (within the node's dedup window, 10 minutes by
// default). If a request fails for good, its records fail and the
// records after them are still sent.
type Producer struct {
	c   *Client
	cfg producerConfig
	log *slog.Logger
	// id prefixes the Idempotency-Key of every request; batchSeq
	// numbers the requests.
	id       string
	batchSeq atomic.Uint64

	// sendCtx is the parent of every request; Close cancels it, with
	// the error to give the futures, when its context ends first.
	sendCtx    context.Context
	cancelSend context.CancelCauseFunc
	// wake tells the dispatch loop to look for batches to send.
	wake      chan struct{}
	stop      chan struct{}
	loopDone  chan struct{}
	closeDone chan struct{}
	closeErr  error
	// workers counts send and metadata goroutines.
	workers   sync.WaitGroup
	handlerMu sync.Mutex

	mu     sync.Mutex
	topics map[string]*topicQueue
	// order lists topics for round-robin dispatch; rr is the next one.
	order []*topicQueue
	rr    int
	// buffered counts the bytes of records produced and not yet done.
	buffered int64
	// spaceFreed and progress are closed (and reset to nil) when buffer
	// space is freed and when a future is done; nil while nobody waits.
	spaceFreed chan struct{}
	progress   chan struct{}
	inflight   int
	// nextCheck is when the dispatch loop last planned to run again.
	nextCheck time.Time
	closed    bool
	// flushing counts Flush calls waiting: while any does, records are
	// sent without lingering.
	flushing int
	// seq numbers records in the order they were produced; head and
	// tail list the futures not yet done, in that order.
	seq        uint64
	head, tail *Future
}

// topicQueue is the state of one topic. All fields are guarded by
// Producer.mu.
type topicQueue struct {
	name string
	// partitions is the topic's partition count, 0 while unknown.
	partitions int
	resolving  bool
	// unresolved holds records produced while the partition count was
	// unknown (or while earlier such records wait), in order.
	unresolved []*Future
	parts      []*partQueue
	// nonEmpty lists partitions that may hold pending records (empty
	// ones are dropped when seen); rr rotates where batches start.
	nonEmpty []int32
	rr       int
	// sticky is the partition of records without a key, -1 for none.
	sticky int32
	// pendingBytes and pendingRecords count the records in parts.
	pendingBytes   int64
	pendingRecords int
}

// partQueue is one partition's records waiting to be sent. While busy,
// a request holding records of the partition is in flight, and none
// other may be sent.
type partQueue struct {
	recs []*Future
	// bytes is the size of recs.
	bytes  int64
	queued bool // in topicQueue.nonEmpty
	busy   bool
}

// batch is one produce request.
type batch struct {
	topic    *topicQueue
	parts    []*partQueue
	recs     []*Future
	bytes    int64
	deadline time.Time
}

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

// NewProducer returns a producer that sends through c. Close it to
// deliver what it holds and stop its goroutines.
func (c *Client) NewProducer(opts ...ProducerOpt) (*Producer, error) {
	cfg := producerConfig{
		linger:          DefaultLinger,
		maxBatchBytes:   DefaultMaxBatchBytes,
		maxBatchRecords: DefaultMaxBatchRecords,
		maxBuffered:     DefaultMaxBufferedBytes,
		maxInFlight:     DefaultMaxInFlight,
		deliveryTimeout: DefaultDeliveryTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxBuffered < cfg.maxBatchBytes+recordOverhead {
		cfg.errs = append(cfg.errs, fmt.Errorf("max buffered bytes %d is less than max batch bytes %d plus %d", cfg.maxBuffered, cfg.maxBatchBytes, recordOverhead))
	}
	if err := errors.Join(cfg.errs...); err != nil {
		return nil, fmt.Errorf("mamba producer: %w", err)
	}
	var idb [12]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("mamba producer: random id: %w", err)
	}
	p := &Producer{
		c:         c,
		cfg:       cfg,
		log:       c.log,
		id:        "p-" + hex.EncodeToString(idb[:]),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
		closeDone: make(chan struct{}),
		topics:    make(map[string]*topicQueue),
	}
	p.sendCtx, p.cancelSend = context.WithCancelCause(context.Background())
	go p.run()
	return p, nil
}

// Produce sends rec and waits for its acknowledgement: under the default
// durable ack, the record is in the bucket and its offset committed. It
// blocks while the buffer is full. If ctx ends first, Produce returns
// ctx's error, and a record already handed to the producer may still be
// delivered.
func (p *Producer) Produce(ctx context.Context, rec Record) (Result, error) {
	f, err := p.enqueue(ctx, rec, true, true)
	if err != nil {
		return Result{}, err
	}
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return Result{}, fmt.Errorf("produce to %s: %w (the record may still be delivered)", rec.Topic, ctx.Err())
	}
}

// ProduceAsync hands rec to the producer and returns its future at once,
// blocking only while the buffer is full. Errors, including ErrClosed
// after Close, come through the future (and the error handler, if set).
func (p *Producer) ProduceAsync(rec Record) *Future {
	f, err := p.enqueue(nil, rec, true, false)
	if err != nil {
		f = p.failedFuture(rec, err)
		p.report([]*Future{f})
	}
	return f
}

// TryProduce is ProduceAsync that never blocks: when the record does not
// fit in the buffer it returns ErrBufferFull, and ErrClosed after Close,
// or an error for an invalid record.
func (p *Producer) TryProduce(rec Record) (*Future, error) {
	return p.enqueue(nil, rec, false, false)
}

func (p *Producer) failedFuture(rec Record, err error) *Future {
	f := &Future{rec: rec, done: make(chan struct{}), resolved: true, err: err}
	close(f.done)
	return f
}

// checkRecord validates rec and returns its size for the batch and
// buffer limits.
func (p *Producer) checkRecord(rec Record) (int64, error) {
	if err := validateName("topic", rec.Topic); err != nil {
		return 0, err
	}
	if rec.Partition != nil && *rec.Partition < 0 {
		return 0, fmt.Errorf("produce to %s: %w: negative partition %d", rec.Topic, ErrInvalidRequest, *rec.Partition)
	}
	size := int64(len(rec.Key) + len(rec.Value))
	var names map[string]bool
	if p.cfg.json && len(rec.Headers) > 1 {
		names = make(map[string]bool, len(rec.Headers))
	}
	for _, h := range rec.Headers {
		if h.Name == "" || !utf8.ValidString(h.Name) {
			return 0, fmt.Errorf("produce to %s: %w: header name %q is empty or not UTF-8", rec.Topic, ErrInvalidRequest, h.Name)
		}
		if names != nil {
			if names[h.Name] {
				return 0, fmt.Errorf("produce to %s: %w: header %q repeats, which JSON cannot carry", rec.Topic, ErrInvalidRequest, h.Name)
			}
			names[h.Name] = true
		}
		size += int64(len(h.Name) + len(h.Value))
	}
	if size > p.cfg.maxBatchBytes {
		return 0, fmt.Errorf("produce to %s: %w: record of %d bytes is over the max batch bytes %d", rec.Topic, ErrPayloadTooLarge, size, p.cfg.maxBatchBytes)
	}
	return size + recordOverhead, nil
}

// enqueue adds rec to the producer. With block it waits for buffer space
// (until ctx ends, when ctx is not nil); without, it fails with
// ErrBufferFull.
func (p *Producer) enqueue(ctx context.Context, rec Record, block, sync bool) (*Future, error) {
	size, err := p.checkRecord(rec)
	if err != nil {
		return nil, err
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("produce to %s: %w", rec.Topic, ErrClosed)
		}
		if p.buffered+size <= p.cfg.maxBuffered {
			break
		}
		if !block {
			p.mu.Unlock()
			return nil, fmt.Errorf("produce to %s: %w", rec.Topic, ErrBufferFull)
		}
		if p.spaceFreed == nil {
			p.spaceFreed = make(chan struct{})
		}
		ch := p.spaceFreed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctxDone:
			return nil, fmt.Errorf("produce to %s: wait for buffer space: %w", rec.Topic, ctx.Err())
		}
		p.mu.Lock()
	}
	p.seq++
	f := &Future{rec: rec, size: size, seq: p.seq, enqueued: time.Now(), sync: sync, done: make(chan struct{})}
	p.buffered += size
	if p.tail == nil {
		p.head, p.tail = f, f
	} else {
		f.prev, p.tail.next, p.tail = p.tail, f, f
	}
	tq := p.topics[rec.Topic]
	if tq == nil {
		tq = &topicQueue{name: rec.Topic, sticky: -1}
		p.topics[rec.Topic] = tq
		p.order = append(p.order, tq)
	}
	var failed []*Future
	if tq.partitions == 0 || len(tq.unresolved) > 0 {
		tq.unresolved = append(tq.unresolved, f)
		if !tq.resolving {
			tq.resolving = true
			p.workers.Add(1)
			go p.resolve(tq)
		}
	} else if !p.placeLocked(tq, f) {
		failed = append(failed, f)
	}
	p.mu.Unlock()
	p.report(failed)
	return f, nil
}

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

func (p *Producer) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
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
// waiting for it, retrying transient errors until they expire.
func (p *Producer) resolve(tq *topicQueue) {
	defer p.workers.Done()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(p.sendCtx, p.c.timeout)
		n, err := p.c.partitionCount(ctx, tq.name)
		cancel()
		var failed []*Future
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
		wait := p.c.retry.backoff(attempt)
		p.log.Debug("mamba: retrying topic metadata", "topic", tq.name, "attempt", attempt, "backoff", wait, "err", err)
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

func (p *Producer) failAllLocked(fs []*Future, err error) []*Future {
	var failed []*Future
	for _, f := range fs {
		if p.resolveLocked(f, Result{}, err) {
			failed = append(failed, f)
		}
	}
	return failed
}

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

// send delivers b, retrying until it is acknowledged, fails for good or
// runs out of time, then settles its futures.
func (p *Producer) send(b *batch) {
	defer p.workers.Done()
	body, ctype := p.encode(b)
	key := p.id + ":" + strconv.FormatUint(p.batchSeq.Add(1), 10)
	var results []Result
	var err, lastErr error
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithDeadline(p.sendCtx, b.deadline)
		results, err = p.produceOnce(ctx, b, body, ctype, key)
		expired := ctx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil {
			break
		}
		if cause := context.Cause(p.sendCtx); cause != nil {
			err = cause
			break
		}
		if expired {
			// The delivery timeout ended this attempt; the error of the
			// one before says more.
			if lastErr != nil {
				err = lastErr
			}
			err = fmt.Errorf("%w after %d attempts: %w", ErrDeliveryTimeout, attempt, err)
			break
		}
		if !IsRetryable(err) || p.cfg.maxAttempts > 0 && attempt >= p.cfg.maxAttempts {
			break
		}
		lastErr = err
		wait := p.c.retry.delay(attempt, err)
		if !time.Now().Add(wait).Before(b.deadline) {
			err = fmt.Errorf("%w after %d attempts: %w", ErrDeliveryTimeout, attempt, err)
			break
		}
		p.log.Debug("mamba: retrying produce", "topic", b.topic.name, "records", len(b.recs), "idempotency_key", key, "attempt", attempt, "backoff", wait, "err", err)
		if sleep(p.sendCtx, wait) != nil {
			err = context.Cause(p.sendCtx)
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("produce to %s: %w", b.topic.name, err)
	}
	p.complete(b, results, err)
}

// complete settles b's futures and frees its partitions.
func (p *Producer) complete(b *batch, results []Result, err error) {
	var failed, acked []*Future
	p.mu.Lock()
	for _, q := range b.parts {
		q.busy = false
	}
	p.inflight--
	if err != nil && (errors.Is(err, ErrTopicNotFound) || errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrPartitionNotFound)) {
		// The topic may have been deleted or recreated: records produced
		// from now on wait for its partition count again.
		b.topic.partitions = 0
	}
	for i, f := range b.recs {
		if err != nil {
			if p.resolveLocked(f, Result{}, err) {
				failed = append(failed, f)
			}
			continue
		}
		if p.resolveLocked(f, results[i], nil); !f.sync && p.cfg.onAck != nil {
			acked = append(acked, f)
		}
	}
	p.wakeLocked()
	p.mu.Unlock()
	p.report(failed)
	p.reportAcked(acked)
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

// encode builds b's request body once; retries send the same bytes.
func (p *Producer) encode(b *batch) ([]byte, string) {
	if p.cfg.json {
		type jsonRecord struct {
			Key       *string           `json:"key"`
			Value     string            `json:"value"`
			Headers   map[string]string `json:"headers,omitempty"`
			Partition int32             `json:"partition"`
			Timestamp int64             `json:"timestamp,omitempty"`
		}
		recs := make([]jsonRecord, len(b.recs))
		enc := base64.StdEncoding.EncodeToString
		for i, f := range b.recs {
			r := jsonRecord{Value: enc(f.rec.Value), Partition: f.partition, Timestamp: millis(f.rec.Timestamp)}
			if f.rec.Key != nil {
				k := enc(f.rec.Key)
				r.Key = &k
			}
			if len(f.rec.Headers) > 0 {
				r.Headers = make(map[string]string, len(f.rec.Headers))
				for _, h := range f.rec.Headers {
					r.Headers[h.Name] = enc(h.Value)
				}
			}
			recs[i] = r
		}
		body, err := json.Marshal(struct {
			Records []jsonRecord `json:"records"`
		}{recs})
		if err != nil {
			// Only strings and numbers: this cannot fail.
			panic(fmt.Sprintf("encode produce request: %v", err))
		}
		return body, "application/json"
	}
	// b.bytes counts recordOverhead per record, more than its framing.
	body := wire.AppendProduceRequestStart(make([]byte, 0, b.bytes+16), len(b.recs))
	var hs []wire.Header // reused: AppendProduceRecord copies
	for _, f := range b.recs {
		r := wire.ProduceRecord{Partition: f.partition, Timestamp: millis(f.rec.Timestamp), Key: f.rec.Key, Value: f.rec.Value}
		if len(f.rec.Headers) > 0 {
			hs = hs[:0]
			for _, h := range f.rec.Headers {
				hs = append(hs, wire.Header{Name: h.Name, Value: h.Value})
			}
			r.Headers = hs
		}
		body = wire.AppendProduceRecord(body, &r)
	}
	return body, wire.ContentType
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// produceOnce makes one attempt of b's request.
func (p *Producer) produceOnce(ctx context.Context, b *batch, body []byte, ctype, key string) ([]Result, error) {
	q := url.Values{}
	if p.cfg.ackBuffered {
		q.Set("ack", "buffered")
	}
	if p.cfg.json {
		q.Set("format", "base64")
	}
	r := &request{
		method:      http.MethodPost,
		path:        apiPath("v1", "topics", b.topic.name, "records"),
		query:       q,
		body:        body,
		contentType: ctype,
		accept:      wire.ContentType + ", application/json;q=0.5",
		header:      http.Header{"Idempotency-Key": {key}},
	}
	if p.cfg.json {
		r.accept = "application/json"
	}
	resp, err := p.c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	var parts []int32
	var offsets []int64
	mt, _, _ := mime.ParseMediaType(resp.header.Get("Content-Type"))
	switch mt {
	case wire.ContentType:
		rs, err := wire.DecodeProduceResponse(resp.body)
		if err != nil {
			return nil, fmt.Errorf("decode produce answer: %w", err)
		}
		for _, r := range rs {
			parts = append(parts, r.Partition)
			offsets = append(offsets, r.Offset)
		}
	case "application/json":
		var out struct {
			Records []struct {
				Partition int32 `json:"partition"`
				Offset    int64 `json:"offset"`
			} `json:"records"`
		}
		if err := decodeJSON(resp, &out); err != nil {
			return nil, fmt.Errorf("decode produce answer: %w", err)
		}
		for _, r := range out.Records {
			parts = append(parts, r.Partition)
			offsets = append(offsets, r.Offset)
		}
	default:
		return nil, fmt.Errorf("produce answer has Content-Type %q", resp.header.Get("Content-Type"))
	}
	if len(parts) != len(b.recs) {
		return nil, fmt.Errorf("produce answer has %d results for %d records", len(parts), len(b.recs))
	}
	results := make([]Result, len(parts))
	for i := range parts {
		results[i] = Result{Topic: b.topic.name, Partition: parts[i], Offset: offsets[i]}
	}
	return results, nil
}

// Flush sends every record produced before the call without lingering,
// and waits until each is acknowledged or failed, or until ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.seq
	p.flushing++
	p.wakeLocked()
	defer func() {
		p.flushing--
		p.mu.Unlock()
	}()
	for p.head != nil && p.head.seq <= target {
		if p.progress == nil {
			p.progress = make(chan struct{})
		}
		ch := p.progress
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return fmt.Errorf("flush producer: %w", ctx.Err())
		}
		p.mu.Lock()
	}
	return nil
}

// Close stops the producer: from now on Produce and TryProduce return
// ErrClosed and ProduceAsync's futures fail with it; records blocked
// waiting for buffer space fail with it too. Close then delivers what the
// producer holds, as Flush does, and releases its goroutines. If ctx ends
// first, every record not yet done fails with an error wrapping ErrClosed
// and ctx's error (such records may or may not have been stored), and
// Close returns ctx's error. Later calls wait for the first and return
// its result.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		select {
		case <-p.closeDone:
			return p.closeErr
		case <-ctx.Done():
			return fmt.Errorf("close producer: %w", ctx.Err())
		}
	}
	p.closed = true
	if p.spaceFreed != nil {
		close(p.spaceFreed)
		p.spaceFreed = nil
	}
	p.mu.Unlock()

	err := p.Flush(ctx)
	if err != nil {
		cause := fmt.Errorf("%w before delivery: %w", ErrClosed, ctx.Err())
		p.cancelSend(cause)
		var failed []*Future
		p.mu.Lock()
		for f := p.head; f != nil; {
			next := f.next
			if p.resolveLocked(f, Result{}, fmt.Errorf("produce to %s: %w", f.rec.Topic, cause)) {
				failed = append(failed, f)
			}
			f = next
		}
		for _, tq := range p.order {
			tq.unresolved = nil
			tq.pendingBytes, tq.pendingRecords = 0, 0
			for _, q := range tq.parts {
				clear(q.recs)
				q.recs, q.bytes = nil, 0
			}
		}
		p.mu.Unlock()
		p.report(failed)
		err = fmt.Errorf("close producer: %w", ctx.Err())
	}
	close(p.stop)
	<-p.loopDone
	p.workers.Wait()
	p.cancelSend(ErrClosed)
	p.closeErr = err
	close(p.closeDone)
	return err
}
