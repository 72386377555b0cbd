package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

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
	f, err := p.enqueue(context.Background(), rec, true, false)
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
	return p.enqueue(context.Background(), rec, false, false)
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
	for _, h := range rec.Headers {
		if h.Name == "" || !utf8.ValidString(h.Name) {
			return 0, fmt.Errorf("produce to %s: %w: header name %q is empty or not UTF-8", rec.Topic, ErrInvalidRequest, h.Name)
		}
		size += int64(len(h.Name) + len(h.Value))
	}
	if size > p.cfg.maxBatchBytes {
		return 0, fmt.Errorf("produce to %s: %w: record of %d bytes is over the max batch bytes %d", rec.Topic, ErrPayloadTooLarge, size, p.cfg.maxBatchBytes)
	}
	return size + recordOverhead, nil
}

// enqueue adds rec to the producer. With block it waits for buffer space
// until ctx ends (context.Background waits as long as it takes); without,
// it fails with ErrBufferFull.
func (p *Producer) enqueue(ctx context.Context, rec Record, block, sync bool) (*Future, error) {
	size, err := p.checkRecord(rec)
	if err != nil {
		return nil, err
	}
	ctxDone := ctx.Done()
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

func (p *Producer) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
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
