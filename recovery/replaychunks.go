package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// directory is a chunk's batch directory, or why it could not be read.
type directory struct {
	id      chunkid.ID
	batches []chunk.BatchInfo
	err     error
	done    chan struct{}
}

// replayChunks reads the chunks' directories, Concurrency at a time and
// up to maxReadAhead ahead of the commits, and commits the chunks in id
// order, pipelining the commits of up to commitPipeline chunks that are
// ready.
func (r *replayer) replayChunks(ctx context.Context, ids []chunkid.ID) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan *directory, maxReadAhead)
	reads := make(chan struct{}, r.opts.Concurrency)
	go func() {
		defer close(queue)
		for _, id := range ids {
			d := &directory{id: id, done: make(chan struct{})}
			select {
			case reads <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case queue <- d:
			case <-ctx.Done():
				return
			}
			go func() {
				defer close(d.done)
				defer func() { <-reads }()
				d.batches, d.err = readDirectory(ctx, r.bucket, id)
			}()
		}
	}()
	r.opts.report(Progress{Phase: PhaseReplay, Total: len(ids)})
	done := 0
	for d := range queue {
		group := []*directory{d}
		closed := false
	more:
		for len(group) < commitPipeline {
			select {
			case next, ok := <-queue:
				if !ok {
					closed = true
					break more
				}
				group = append(group, next)
			default:
				break more
			}
		}
		for _, d := range group {
			<-d.done
		}
		if err := r.replayGroup(ctx, group); err != nil {
			return err
		}
		done += len(group)
		r.opts.report(Progress{Phase: PhaseReplay, Done: done, Total: len(ids)})
		if closed {
			break
		}
	}
	return ctx.Err()
}

// readDirectory reads a chunk's header and directory, retrying transient
// failures.
func readDirectory(ctx context.Context, bk *bucket.Bucket, id chunkid.ID) ([]chunk.BatchInfo, error) {
	d, err := withRetry(ctx, func(ctx context.Context) (bucket.ChunkDirectory, error) { return bk.ReadChunkDirectory(ctx, id) })
	return d.Batches, err
}

// replayGroup commits, in one pipeline, the batches of consecutive chunks
// that the store does not hold yet.
func (r *replayer) replayGroup(ctx context.Context, group []*directory) error {
	var commits []metadata.ChunkCommit
	owner := []int{} // commits[i] belongs to group[owner[i]]
	for gi, d := range group {
		cs, err := r.planChunk(ctx, d)
		if err != nil {
			return err
		}
		for range cs {
			owner = append(owner, gi)
		}
		commits = append(commits, cs...)
	}
	replayed := make([]bool, len(group))
	if len(commits) > 0 {
		results, err := r.meta.CommitChunks(ctx, commits)
		if err != nil {
			return fmt.Errorf("replay chunks: %w", err)
		}
		for i, res := range results {
			c := commits[i]
			for j, base := range res.BaseOffsets {
				if base < 0 {
					r.stats.BatchesDuplicate++
					continue
				}
				r.stats.BatchesIndexed++
				r.stats.RecordsIndexed += c.Batches[j].Records
			}
			if r.committed[c.Topic.Name] == nil {
				r.committed[c.Topic.Name] = map[string]bool{}
			}
			r.committed[c.Topic.Name][c.ChunkID] = true
			replayed[owner[i]] = true
		}
	}
	for gi, d := range group {
		switch {
		case d.err != nil:
			r.stats.ChunksUnreadable++
		case replayed[gi]:
			r.stats.ChunksReplayed++
		default:
			r.stats.ChunksSkipped++
		}
	}
	return nil
}

// planChunk returns the commits, one per topic, of the chunk's batches
// that the store does not hold yet. A chunk that could not be read is
// skipped with a warning, unless the failure was not the chunk's fault.
func (r *replayer) planChunk(ctx context.Context, d *directory) ([]metadata.ChunkCommit, error) {
	idStr := d.id.String()
	if d.err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(d.err, chunk.ErrCorrupt) && !errors.Is(d.err, objectstore.ErrNotExist) && !errors.Is(d.err, objectstore.ErrInvalidRange) {
			return nil, fmt.Errorf("read chunk %s: %w", idStr, d.err)
		}
		r.warn("skip unreadable chunk", "chunk", idStr, "err", d.err)
		return nil, nil
	}
	var order []string
	byTopic := map[string][]chunk.BatchInfo{}
	for _, b := range d.batches {
		if _, seen := byTopic[b.Topic]; !seen {
			order = append(order, b.Topic)
		}
		byTopic[b.Topic] = append(byTopic[b.Topic], b)
	}
	var commits []metadata.ChunkCommit
	for _, name := range order {
		infos := byTopic[name]
		t, ok := r.incarnationAt(name, d.id.Time())
		if !ok || t.ID != r.live[name].ID {
			// Written while no incarnation we know existed, or for one
			// deleted since: its records went with the topic.
			r.stats.BatchesSkipped += len(infos)
			continue
		}
		if r.committed[name][idStr] {
			continue
		}
		if batches := r.commitBatches(t, idStr, infos); len(batches) > 0 {
			commits = append(commits, metadata.ChunkCommit{Topic: t, ChunkID: idStr, Batches: batches})
		}
	}
	return commits, nil
}

// incarnationAt returns the incarnation of the topic that existed when a
// chunk was written at t: the newest one created at or before t.
func (r *replayer) incarnationAt(name string, t time.Time) (metadata.Topic, bool) {
	known := r.incarnations[name]
	ms := t.UnixMilli()
	for i := len(known) - 1; i >= 0; i-- {
		if known[i].CreatedMS <= ms {
			return known[i], true
		}
	}
	return metadata.Topic{}, false
}

// commitBatches turns a chunk's batches of topic t into what Commit takes.
// A batch ingest could not have written (a partition the topic lacks, a
// bad idempotency key) is skipped with a warning. The first batch of each
// idempotency key carries the batch-order layout of the key's batches, so
// that a producer's retry after the restore is answered.
func (r *replayer) commitBatches(t metadata.Topic, chunkID string, infos []chunk.BatchInfo) []metadata.Batch {
	var batches []metadata.Batch
	first := map[string]int{} // key -> index of its first batch
	type keyBatches struct {
		partitions []int32
		records    []int
	}
	keys := map[string]*keyBatches{}
	for _, b := range infos {
		if int(b.Partition) >= t.Partitions {
			r.stats.BatchesSkipped++
			r.warn("skip batch of a partition the topic lacks", "chunk", chunkID, "topic", t.Name, "partition", b.Partition)
			continue
		}
		if b.IdempotencyKey != "" {
			if err := metadata.ValidateIdempotencyKey(b.IdempotencyKey); err != nil {
				r.stats.BatchesSkipped++
				r.warn("skip batch with a bad idempotency key", "chunk", chunkID, "topic", t.Name, "err", err)
				continue
			}
			k := keys[b.IdempotencyKey]
			if k == nil {
				k = &keyBatches{}
				keys[b.IdempotencyKey] = k
				first[b.IdempotencyKey] = len(batches)
			}
			k.partitions = append(k.partitions, b.Partition)
			k.records = append(k.records, b.Records)
		}
		batches = append(batches, metadata.Batch{
			Partition: b.Partition, Records: b.Records, Offset: b.Offset, Length: b.Length,
			IdempotencyKey: b.IdempotencyKey,
		})
	}
	for key, i := range first {
		k := keys[key]
		batches[i].Layout = metadata.BatchOrderLayout(k.partitions, k.records)
	}
	return batches
}
