package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/retry"
	"github.com/mambamq/mamba/metadata"
)

// maxSharedBatchBytes starts a new batch for a partition once the records
// merged into its current one reach this size, keeping every batch well
// under chunk.MaxBatchBytes and cheap to read back.
const maxSharedBatchBytes = 16 << 20

// topicPlan is one topic's part of a chunk: its batches in chunk order, the
// records of each, and what to commit.
type topicPlan struct {
	topic metadata.Topic
	// recs holds each batch's records, laid out by fill once every
	// request is planned, and dropped once encoded.
	recs    [][]chunk.Record
	bytes   []int
	headers []int
	batches []metadata.Batch
	reqs    []*produceReq
	shared  map[int32]int // partition -> open shared batch, while planning
}

// dispatch starts an upload for each sealed chunk, at most
// UploadConcurrency at once, and hands the chunks in seal order to the
// commit loop.
func (n *Node) dispatch(ctx context.Context, commitQueue chan<- *pendingChunk) {
	defer close(commitQueue)
	sem := make(chan struct{}, n.cfg.UploadConcurrency)
	for {
		select {
		case <-ctx.Done():
			n.failQueued(ErrShuttingDown)
			return
		case <-n.sealSignal:
		}
		n.mu.Lock()
		queue := n.sealQueue
		n.sealQueue = nil
		n.mu.Unlock()
		for i, pc := range queue {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, rest := range queue[i:] {
					n.answerAll(rest, nil, ErrShuttingDown)
				}
				n.failQueued(ErrShuttingDown)
				return
			}
			go func() {
				defer func() { <-sem }()
				n.upload(ctx, pc)
			}()
			select {
			case commitQueue <- pc:
			case <-ctx.Done():
				<-pc.uploaded
				n.answerAll(pc, nil, ErrShuttingDown)
				for _, rest := range queue[i+1:] {
					n.answerAll(rest, nil, ErrShuttingDown)
				}
				n.failQueued(ErrShuttingDown)
				return
			}
		}
	}
}

// failQueued answers every chunk still waiting for the pipeline.
func (n *Node) failQueued(err error) {
	n.mu.Lock()
	queue := n.sealQueue
	n.sealQueue = nil
	n.mu.Unlock()
	for _, pc := range queue {
		n.answerAll(pc, nil, err)
	}
}

// upload encodes the chunk and PUTs it, retrying until the chunk's
// deadline. It always closes pc.uploaded.
func (n *Node) upload(ctx context.Context, pc *pendingChunk) {
	defer close(pc.uploaded)
	if pc.uploadErr != nil {
		return
	}
	data, err := n.encode(pc)
	// The records are in data now (or never will be): their request
	// bodies may be reused.
	for _, tp := range pc.plans {
		tp.recs = nil
	}
	for _, req := range pc.reqs {
		for _, r := range append([]*produceReq{req}, req.followers...) {
			clear(r.records)
			r.releaseBody()
		}
	}
	if err != nil {
		pc.uploadErr = err
		n.log.Error("encode chunk", "chunk", pc.id.String(), "err", err)
		return
	}
	pc.size = len(data)
	for _, req := range pc.reqs {
		pc.records += len(req.records)
	}
	deadline := pc.sealed.Add(n.cfg.WriteTimeout)
	err = retryUntil(ctx, deadline, func(ctx context.Context) error {
		err := n.bucket.PutChunk(ctx, pc.id, data)
		if err != nil {
			n.log.Warn("upload chunk", "chunk", pc.id.String(), "bytes", len(data), "err", err)
		}
		return err
	}, nil)
	if err != nil {
		pc.uploadErr = fmt.Errorf("upload chunk %s: %w: %w", pc.id, ErrUnavailable, err)
		return
	}
	// Tailing consumers read these batches from memory.
	for _, tp := range pc.plans {
		for _, b := range tp.batches {
			n.cache.put(cacheKey(pc.id.String(), b.Offset), data[b.Offset:b.Offset+b.Length:b.Offset+b.Length])
		}
	}
}

func cacheKey(chunkID string, off int64) string {
	return chunkID + "@" + strconv.FormatInt(off, 10)
}

// encode plans the chunk's batches and encodes it. Records of requests
// without an idempotency key share one batch per partition; each request
// with a key gets batches of its own, so that the key can be recognised
// and the whole request dropped on a repeat.
func (n *Node) encode(pc *pendingChunk) ([]byte, error) {
	byTopic := map[string]*topicPlan{}
	for _, req := range pc.reqs {
		tp := byTopic[req.topic.ID]
		if tp == nil {
			tp = &topicPlan{topic: req.topic}
			byTopic[req.topic.ID] = tp
			pc.plans = append(pc.plans, tp)
		}
		tp.add(req)
	}
	for _, tp := range pc.plans {
		tp.fill()
	}
	w, err := chunk.NewWriter(pc.id.String())
	if err != nil {
		return nil, err
	}
	// Room for the whole chunk up front: the records are copied once,
	// into the buffer that is uploaded, and never moved again. recordSize
	// counts more than a record's encoding, so the data fits.
	dirBytes, dataBytes := 0, int(pc.bytes)
	for _, tp := range pc.plans {
		for _, b := range tp.batches {
			dirBytes += chunk.EntrySize(tp.topic.Name, b.IdempotencyKey)
			dataBytes += chunk.BatchHeaderSize
		}
	}
	w.Reserve(dirBytes, dataBytes)
	for _, tp := range pc.plans {
		for b := range tp.batches {
			spec := chunk.BatchSpec{Topic: tp.topic.Name, Partition: tp.batches[b].Partition,
				IdempotencyKey: tp.batches[b].IdempotencyKey, Codec: n.cfg.Codec}
			if _, err := w.Add(spec, tp.recs[b]); err != nil {
				return nil, fmt.Errorf("encode batch of %s/%d: %w", tp.topic.Name, spec.Partition, err)
			}
		}
	}
	data, infos, err := w.Finish()
	if err != nil {
		return nil, err
	}
	i := 0
	for _, tp := range pc.plans {
		for b := range tp.batches {
			tp.batches[b].Offset = infos[i].Offset
			tp.batches[b].Length = infos[i].Length
			tp.recs[b] = nil // encoded; let the records go
			i++
		}
	}
	return data, nil
}

// add places req's records in batches of tp and records each record's slot.
func (tp *topicPlan) add(req *produceReq) {
	if tp.shared == nil {
		tp.shared = map[int32]int{}
	}
	shared := tp.shared
	req.plan = tp
	req.slots = make([]slot, len(req.records))
	tp.reqs = append(tp.reqs, req)
	own := map[int32]int{} // partition -> batch, for a request with a key
	var ownOrder []int32
	for i := range req.records {
		rec := &req.records[i]
		p := req.parts[i]
		var b int
		var ok bool
		if req.idemKey != "" {
			if b, ok = own[p]; !ok {
				b = tp.newBatch(p, req.idemKey)
				own[p] = b
				ownOrder = append(ownOrder, p)
			}
		} else if b, ok = shared[p]; !ok || tp.full(b, rec) {
			b = tp.newBatch(p, "")
			shared[p] = b
		}
		req.slots[i] = slot{b: b, idx: tp.batches[b].Records}
		tp.bytes[b] += recordSize(rec.Key, rec.Value, rec.Headers)
		tp.headers[b] += len(rec.Headers)
		tp.batches[b].Records++
	}
	if req.idemKey != "" {
		kIndex := make(map[int32]int, len(ownOrder))
		for k, p := range ownOrder {
			kIndex[p] = k
		}
		recordBatch := make([]int, len(req.parts))
		for i, p := range req.parts {
			recordBatch[i] = kIndex[p]
		}
		tp.batches[own[ownOrder[0]]].Layout = metadata.EncodeLayout(ownOrder, recordBatch)
	}
}

// full reports whether shared batch b must not take rec: it holds
// maxSharedBatchBytes, or rec would take it over the chunk format's record
// or header count. Requests are admitted only within those counts (place),
// so a batch of one request's records always fits.
func (tp *topicPlan) full(b int, rec *chunk.Record) bool {
	return tp.bytes[b] >= maxSharedBatchBytes ||
		tp.batches[b].Records >= chunk.MaxBatchRecords ||
		tp.headers[b]+len(rec.Headers) > chunk.MaxBatchHeaders
}

func (tp *topicPlan) newBatch(p int32, key string) int {
	tp.batches = append(tp.batches, metadata.Batch{Partition: p, IdempotencyKey: key})
	tp.bytes = append(tp.bytes, 0)
	tp.headers = append(tp.headers, 0)
	return len(tp.batches) - 1
}

// fill lays out the records of every batch, in the places add chose, in
// one array: batches grow one record at a time while planning, and
// appending them there would copy and reallocate each several times.
func (tp *topicPlan) fill() {
	total := 0
	for _, b := range tp.batches {
		total += b.Records
	}
	all := make([]chunk.Record, total)
	tp.recs = make([][]chunk.Record, len(tp.batches))
	for b := range tp.batches {
		n := tp.batches[b].Records
		tp.recs[b], all = all[:n:n], all[n:]
	}
	for _, req := range tp.reqs {
		for i, s := range req.slots {
			tp.recs[s.b][s.idx] = req.records[i]
		}
	}
}

// commitLoop commits chunks in seal order and answers their producers.
func (n *Node) commitLoop(ctx context.Context, queue <-chan *pendingChunk) {
	for pc := range queue {
		select {
		case <-pc.uploaded:
		case <-ctx.Done():
			<-pc.uploaded
		}
		if ctx.Err() != nil {
			n.answerAll(pc, nil, ErrShuttingDown)
			continue
		}
		if pc.uploadErr != nil {
			n.answerAll(pc, nil, pc.uploadErr)
			continue
		}
		n.commit(ctx, pc)
	}
}

// commit applies the chunk's commits, one script per topic, all at once,
// and answers each topic's requests with its outcome.
func (n *Node) commit(ctx context.Context, pc *pendingChunk) {
	start := time.Now()
	deadline := pc.sealed.Add(n.cfg.WriteTimeout)
	var wg sync.WaitGroup
	for _, tp := range pc.plans {
		wg.Go(func() {
			var res metadata.CommitResult
			err := retryUntil(ctx, deadline, func(ctx context.Context) error {
				var err error
				res, err = n.meta.Commit(ctx, tp.topic, pc.id.String(), tp.batches)
				if err != nil && retryableCommit(err) {
					n.metrics.commitRetries.Inc()
					n.log.Warn("commit chunk", "chunk", pc.id.String(), "topic", tp.topic.Name, "err", err)
				}
				return err
			}, retryableCommit)
			switch {
			case errors.Is(err, metadata.ErrTopicNotFound):
				n.forgetTopic(tp.topic.Name)
			case errors.Is(err, metadata.ErrChunkTooOld):
				// Nothing was indexed and never will be: the chunk is
				// left for garbage collection.
				err = fmt.Errorf("commit chunk %s: %w: %w", pc.id, ErrUnavailable, err)
			case err != nil && retryableCommit(err):
				// Redis may or may not have applied the commit: a retry
				// with the same idempotency key finds out.
				err = fmt.Errorf("commit chunk %s: %w: %w", pc.id, ErrUnavailable, err)
			}
			n.answerTopic(tp, res, err)
			if err == nil {
				for p := range res.HighWatermarks {
					n.waiters.wake(tp.topic.Name, p)
				}
			}
		})
	}
	wg.Wait()
	n.metrics.commitLatency.Observe(time.Since(start).Seconds())
	n.metrics.flushLatency.Observe(time.Since(pc.sealed).Seconds())
	n.metrics.flushBytes.Observe(float64(pc.size))
	n.metrics.flushRecords.Observe(float64(pc.records))
}

func retryableCommit(err error) bool {
	return !errors.Is(err, metadata.ErrTopicNotFound) && !errors.Is(err, metadata.ErrPartitionNotFound) &&
		!errors.Is(err, metadata.ErrChunkTooOld) && !errors.Is(err, context.Canceled)
}

// answerTopic answers the requests of one topic plan from a commit result.
func (n *Node) answerTopic(tp *topicPlan, res metadata.CommitResult, err error) {
	for _, req := range tp.reqs {
		if err != nil {
			n.answer(req, nil, err)
			continue
		}
		if ans, dup := res.Duplicates[req.idemKey]; dup && req.idemKey != "" {
			positions, derr := metadata.DecodeLayout(ans.Layout, ans.BaseOffsets)
			results := make([]RecordResult, len(positions))
			for i, pos := range positions {
				results[i] = RecordResult{Partition: pos.Partition, Offset: pos.Offset}
			}
			n.answer(req, results, derr)
			continue
		}
		results := make([]RecordResult, len(req.records))
		for i, s := range req.slots {
			results[i] = RecordResult{Partition: req.parts[i], Offset: res.BaseOffsets[s.b] + int64(s.idx)}
		}
		n.answer(req, results, nil)
	}
}

// answerAll fails (or answers) every request of a chunk.
func (n *Node) answerAll(pc *pendingChunk, results []RecordResult, err error) {
	for _, req := range pc.reqs {
		n.answer(req, results, err)
	}
}

// answer delivers the outcome to req and its followers, releases their
// bytes from the buffer and, if the upload did not, their bodies.
func (n *Node) answer(req *produceReq, results []RecordResult, err error) {
	var released int64
	for _, r := range append([]*produceReq{req}, req.followers...) {
		r.releaseBody()
		r.done <- produceAnswer{results: results, err: err}
		r.memory.Release()
		released += r.mem
		n.metrics.produceOutcomes.WithLabelValues(outcome(err)).Inc()
		if err == nil {
			n.metrics.recordsIn.Add(float64(len(r.records)))
			n.metrics.bytesIn.Add(float64(r.size))
		}
	}
	n.mu.Lock()
	n.buffered -= released
	n.metrics.bufferedBytes.Set(float64(n.buffered))
	n.checkDrainedLocked()
	n.mu.Unlock()
}

// retryUntil calls fn until it succeeds, fails with an error retryable
// rejects (nil retries every error), or the deadline passes, backing off
// from 25ms to 1s with jitter between attempts (retry.Policy). It returns
// fn's last error. The deadline is the chunk's write timeout: past it the
// producers have been told nothing and retrying serves no one.
func retryUntil(ctx context.Context, deadline time.Time, fn func(context.Context) error, retryable func(error) bool) error {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return retry.Policy{Base: 25 * time.Millisecond, Max: time.Second, Retryable: retryable}.Do(ctx, fn)
}

func isErr(err, target error) bool { return errors.Is(err, target) }
