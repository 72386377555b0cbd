package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/internal/membudget"
	"github.com/mambamq/mamba/internal/wire"
	"github.com/mambamq/mamba/metadata"
)

// maxRequestBytes bounds one produce call so that its records for one
// partition always fit in one batch.
const maxRequestBytes = chunk.MaxBatchBytes / 2

// What a buffered record costs in memory beyond its bytes: the
// ProduceRecord it was decoded into (alive while a durable request
// waits), its chunk.Record in the request and again in its planned batch,
// its partition and its slot; and what each of its headers costs beyond
// its name and value.
var (
	bufferedRecordOverhead = int64(unsafe.Sizeof(ProduceRecord{}) + 2*unsafe.Sizeof(chunk.Record{}) + unsafe.Sizeof(int32(0)) + unsafe.Sizeof(slot{}))
	bufferedHeaderOverhead = int64(unsafe.Sizeof(chunk.Header{}))
)

// chunkBatchBudget bounds the sum of the partitions of a chunk's requests:
// accept seals the open chunk before a request would take it over. Each
// request opens at most one batch per partition it touches (its own
// batches with an idempotency key, otherwise at most one new shared
// batch). Shared batches also split when full (topicPlan.add); each split
// needs a full batch behind it (16 MiB, MaxBatchRecords records or half
// of MaxBatchHeaders headers, each header counting at least 5 bytes), and
// a chunk holds at most FlushBytes (1 GiB at most) plus one request, so
// splits are fewer than 600: the reserve keeps every chunk under
// chunk.MaxBatches.
var chunkBatchBudget = chunk.MaxBatches - 4096

// produceReq is one accepted produce call, waiting for its chunk.
type produceReq struct {
	topic   metadata.Topic
	records []chunk.Record
	parts   []int32 // partition of each record
	idemKey string
	size    int64
	// mem is what the request holds in memory while buffered: size plus
	// the structures of its records and headers (bufferedMemory). The
	// buffer (MaxBufferedBytes) counts it.
	mem int64
	// memory holds at least mem bytes of the node's memory budget (kind
	// Buffered) from accept until the request is answered.
	memory *membudget.Reservation
	// partitions counts the distinct partitions the records go to: the
	// most batches the request can open in its chunk.
	partitions int
	done       chan produceAnswer // buffered: the pipeline never blocks on it
	// release, if not nil, gives back the bytes records alias (the
	// caller's ProduceRequest.Release); releaseBody calls it once the
	// records have been copied into a chunk, or the chunk is given up.
	release func()

	// followers are later calls with the same idempotency key that reached
	// this node while this one was still buffered: they get its answer.
	followers []*produceReq

	// slots place each record in the chunk, set when the chunk is planned.
	slots []slot
	plan  *topicPlan
}

// slot is where one record sits: batch b of its topic plan, at index idx.
type slot struct{ b, idx int }

type produceAnswer struct {
	results []RecordResult
	err     error
}

// pendingChunk collects requests until it is sealed, then carries them
// through upload and commit.
type pendingChunk struct {
	reqs  []*produceReq
	byKey map[string]*produceReq // topic id + NUL + idempotency key
	bytes int64
	// batches bounds the batches the chunk's plan can hold: the sum of its
	// requests' partitions (chunkBatchBudget).
	batches int
	timer   *time.Timer
	id      chunkid.ID
	sealed  time.Time

	// Set by the upload, read by the commit after uploaded is closed.
	plans     []*topicPlan
	size      int // bytes of the encoded chunk
	records   int
	uploadErr error
	uploaded  chan struct{}
}

// Produce is Submit without a release: the records' bytes are the
// caller's again once it returns.
func (n *Node) Produce(ctx context.Context, topicName string, records []ProduceRecord, opts ProduceOptions) ([]RecordResult, error) {
	return n.Submit(ctx, ProduceRequest{Topic: topicName, Records: records, Options: opts})
}

// Submit validates the records, adds them to the open chunk and, unless
// in.Options.Ack is AckBuffered, waits until that chunk is in the bucket
// and committed. It calls in.Release exactly once: before it returns when
// it refuses the request, otherwise once the records are copied into
// their chunk (or the chunk is given up).
func (n *Node) Submit(ctx context.Context, in ProduceRequest) ([]RecordResult, error) {
	req := &produceReq{release: in.Release, idemKey: in.Options.IdempotencyKey, done: make(chan produceAnswer, 1), memory: in.Memory}
	if req.memory == nil {
		req.memory = n.budget.Start(membudget.Buffered)
	}
	accepted := false
	defer func() {
		if !accepted {
			clear(req.records)
			req.releaseBody()
			req.memory.Release()
		}
	}()
	if err := in.Validate(); err != nil {
		return nil, err
	}
	t, err := n.topic(ctx, in.Topic)
	if err != nil {
		return nil, err
	}
	req.topic = t
	if err := n.place(req, in.Records); err != nil {
		return nil, err
	}
	if err := n.accept(req); err != nil {
		n.metrics.produceOutcomes.WithLabelValues(outcome(err)).Inc()
		return nil, err
	}
	accepted = true
	if in.Options.Ack == AckBuffered || ackEarly {
		results := make([]RecordResult, len(req.parts))
		for i, p := range req.parts {
			results[i] = RecordResult{Partition: p, Offset: -1}
		}
		return results, nil
	}
	select {
	case ans := <-req.done:
		return ans.results, ans.err
	case <-ctx.Done():
		// The records may still be committed; the caller's retry with the
		// same idempotency key would learn their offsets.
		return nil, ctx.Err()
	}
}

// place checks records against req's topic and the node's limits and
// fills req's records, partitions and size.
//
// Everything that could make the chunk writer refuse a batch is checked
// here, per request, so that no request can fail the chunk it shares with
// others: the record and header counts (a request's records for one
// partition may form one batch of their own), header names, and sizes.
// What only merging can exceed, planning handles (topicPlan.add and
// chunkBatchBudget).
func (n *Node) place(req *produceReq, records []ProduceRecord) error {
	t := req.topic
	if len(records) > chunk.MaxBatchRecords {
		return fmt.Errorf("request has %d records, over the limit of %d: %w", len(records), chunk.MaxBatchRecords, ErrTooLarge)
	}
	req.records = make([]chunk.Record, len(records))
	req.parts = make([]int32, len(records))
	seen := make([]uint64, (t.Partitions+63)/64) // partitions used, a bit each
	headers := 0
	now := n.now().UnixMilli()
	sticky := int32(-1) // one partition for all keyless records of the call
	for i, r := range records {
		p := r.Partition
		switch {
		case p == AnyPartition && r.Key != nil:
			p = wire.Partition(r.Key, t.Partitions)
		case p == AnyPartition:
			if sticky < 0 {
				sticky = int32(rand.IntN(t.Partitions))
			}
			p = sticky
		case p < 0:
			return invalidf("record %d: partition %d is negative", i, p)
		case int(p) >= t.Partitions:
			return fmt.Errorf("record %d: partition %d of topic %s with %d partitions: %w",
				i, p, t.Name, t.Partitions, ErrPartitionNotFound)
		}
		size := recordSize(r.Key, r.Value, r.Headers)
		if size > n.cfg.MaxRecordBytes {
			return fmt.Errorf("record %d is %d bytes, over the limit of %d: %w", i, size, n.cfg.MaxRecordBytes, ErrTooLarge)
		}
		if headers += len(r.Headers); headers > chunk.MaxBatchHeaders {
			return fmt.Errorf("request has over %d record headers at record %d: %w", chunk.MaxBatchHeaders, i, ErrTooLarge)
		}
		for j, h := range r.Headers {
			if h.Name == "" {
				return invalidf("record %d: empty header name", i)
			}
			if !utf8.ValidString(h.Name) {
				return invalidf("record %d header %d: name is not valid UTF-8", i, j)
			}
		}
		if w, bit := p/64, uint64(1)<<(p%64); seen[w]&bit == 0 {
			seen[w] |= bit
			req.partitions++
		}
		ts := r.Timestamp
		if ts == 0 {
			ts = now
		}
		req.records[i] = chunk.Record{Key: r.Key, Value: r.Value, Headers: r.Headers, Timestamp: ts}
		req.parts[i] = p
		req.size += int64(size)
	}
	if req.size > maxRequestBytes {
		return fmt.Errorf("request is %d bytes, over the limit of %d: %w", req.size, maxRequestBytes, ErrTooLarge)
	}
	req.mem = req.size + int64(len(records))*bufferedRecordOverhead + int64(headers)*bufferedHeaderOverhead
	if req.mem > n.cfg.MaxBufferedBytes {
		return fmt.Errorf("request takes %d bytes in memory (%d records, %d headers), more than the node's whole buffer of %d: %w",
			req.mem, len(records), headers, n.cfg.MaxBufferedBytes, ErrTooLarge)
	}
	return nil
}

// releaseBody calls the request's release, once: later calls do nothing.
// The upload and the answer both call it; the answer comes after the
// upload has finished, or instead of it.
func (r *produceReq) releaseBody() {
	if f := r.release; f != nil {
		r.release = nil
		f()
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case isErr(err, ErrOverloaded):
		return "overloaded"
	case isErr(err, ErrShuttingDown):
		return "shutting_down"
	case isErr(err, ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// AdmitProduce implements Admitter: it refuses, with the error accept
// would give, a request whose body alone would overflow the buffer. It is
// a hint, checked before the body is read; accept decides. accept counts
// at least the body's size for its records (their bytes, 16 bytes a
// record, and each record's structures in memory, 268 bytes on 64-bit
// platforms, where the encoding takes 5 to 20), so the hint never refuses
// what accept would take; on an empty buffer accept decides alone.
//
// It also refuses a body larger than SmallBytes that the memory budget
// could not hold now: reading it would be refused part way.
func (n *Node) AdmitProduce(bodyBytes int64) error {
	if bodyBytes > membudget.SmallBytes && n.budget.Free() < bodyBytes {
		n.metrics.produceOutcomes.WithLabelValues(outcome(ErrOverloaded)).Inc()
		return n.MemoryFull()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing || n.buffered == 0 || n.buffered+bodyBytes <= n.cfg.MaxBufferedBytes {
		return nil
	}
	n.metrics.produceOutcomes.WithLabelValues(outcome(ErrOverloaded)).Inc()
	return n.overloaded()
}

func (n *Node) overloaded() error {
	// Room frees as chunks commit, at most a flush interval apart when
	// the store is healthy.
	return &OverloadedError{RetryAfter: max(time.Second, 2*n.cfg.FlushInterval)}
}

// MemoryFull is the error of a request the memory budget refused: an
// ErrOverloaded whose retry is likely to fit once buffered chunks commit
// or requests in flight finish.
func (n *Node) MemoryFull() error {
	return &OverloadedError{RetryAfter: max(time.Second, 2*n.cfg.FlushInterval), What: "node memory budget full"}
}

// accept adds req to the open chunk, or refuses it when the node is
// draining or its buffer is full.
func (n *Node) accept(req *produceReq) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closing {
		return ErrShuttingDown
	}
	if n.buffered+req.mem > n.cfg.MaxBufferedBytes {
		return n.overloaded()
	}
	if !req.memory.Grow(req.mem - req.memory.Size()) {
		return n.MemoryFull()
	}
	req.memory.Move(membudget.Buffered)
	n.buffered += req.mem
	n.metrics.bufferedBytes.Set(float64(n.buffered))
	if pc := n.open; pc != nil && pc.batches+req.partitions > chunkBatchBudget {
		n.sealLocked()
	}
	pc := n.open
	if pc == nil {
		pc = &pendingChunk{byKey: make(map[string]*produceReq), uploaded: make(chan struct{})}
		pc.timer = time.AfterFunc(n.cfg.FlushInterval, func() { n.sealIfOpen(pc) })
		n.open = pc
	}
	if req.idemKey != "" {
		k := req.topic.ID + "\x00" + req.idemKey
		if leader := pc.byKey[k]; leader != nil {
			leader.followers = append(leader.followers, req)
			return nil
		}
		pc.byKey[k] = req
	}
	pc.reqs = append(pc.reqs, req)
	pc.bytes += req.size
	pc.batches += req.partitions
	if pc.bytes >= int64(n.cfg.FlushBytes) {
		n.sealLocked()
	}
	return nil
}

func (n *Node) sealIfOpen(pc *pendingChunk) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.open == pc {
		n.sealLocked()
	}
}

// sealLocked closes the open chunk to new requests and queues it for
// upload. Chunk ids come from one generator under n.mu, so they increase
// in seal order, which is the order commits are applied in.
func (n *Node) sealLocked() {
	pc := n.open
	if pc == nil {
		return
	}
	n.open = nil
	pc.timer.Stop()
	pc.sealed = n.now()
	id, err := n.ids.New()
	if err != nil {
		// Cannot happen short of 2^80 ids in one millisecond; fail the
		// chunk rather than the node.
		pc.uploadErr = err
	}
	pc.id = id
	n.sealQueue = append(n.sealQueue, pc)
	select {
	case n.sealSignal <- struct{}{}:
	default:
	}
}
