package tiering

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// sweep deletes up to Batch pending objects whose mark is older than the
// grace period (and, with CheckpointGate, than the newest checkpoint),
// after checking again that nothing references them.
func (c *Collector) sweep(ctx context.Context, renew func() error, now time.Time, st *GCStats) error {
	cutoff := now.Add(-c.cfg.Grace)
	if c.cfg.CheckpointGate {
		cps, err := c.bucket.ListCheckpoints(ctx)
		if err != nil {
			return err
		}
		if len(cps) == 0 {
			c.log.Debug("gc: no checkpoint in the bucket yet; deleting nothing")
			return nil
		}
		if newest := cps[len(cps)-1].Time; newest.Before(cutoff) {
			cutoff = newest
		}
	}
	due, err := c.meta.GCPending(ctx, cutoff, c.cfg.Batch)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	return forEach(ctx, c, renew, due, func(ctx context.Context, m metadata.GCMarked) error {
		deleted, size, err := c.collect(ctx, m.Key)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, metadata.ErrUnavailable) || ctx.Err() != nil:
			return err
		case err != nil:
			st.Errors++
			c.errs.Inc()
			c.log.Warn("gc: delete object", "key", m.Key, "err", err)
		case deleted:
			st.Deleted++
			st.DeletedBytes += size
			c.deleted.Inc()
			c.deletedBytes.Add(float64(size))
		default:
			st.Unmarked++
		}
		return nil
	})
}

// collect deletes the pending object at key if nothing references it
// and unmarks it; an object referenced again, or gone, is only unmarked.
// It reports whether it deleted the object, and the bytes it freed.
func (c *Collector) collect(ctx context.Context, key string) (bool, int64, error) {
	if id, err := bucket.ParseChunkKey(key); err == nil {
		refs, size, err := c.chunkTopics(ctx, bucket.Chunk{Key: key, ID: id})
		if errors.Is(err, objectstore.ErrNotExist) {
			c.forget(id.String())
			return false, 0, c.meta.GCUnmark(ctx, key)
		}
		if err != nil {
			return false, 0, err
		}
		used, err := c.meta.Referenced(ctx, id.String(), refs)
		if err != nil {
			return false, 0, err
		}
		if !used {
			if err := c.bucket.DeleteChunk(ctx, id.String()); err != nil {
				return false, 0, err
			}
			c.forget(id.String())
		} else {
			c.log.Info("gc: pending chunk is referenced again; keeping it", "chunk", id)
		}
		return !used, size, c.meta.GCUnmark(ctx, key)
	}
	if name, tid, err := bucket.ParseTopicConfigKey(key); err == nil {
		t, err := c.meta.Topic(ctx, name)
		if err != nil && !errors.Is(err, metadata.ErrTopicNotFound) {
			return false, 0, err
		}
		used := err == nil && t.ID == tid
		if !used {
			if err := c.bucket.DeleteTopicConfig(ctx, name, tid); err != nil {
				return false, 0, err
			}
		}
		return !used, 0, c.meta.GCUnmark(ctx, key)
	}
	// Never marked by this collector; drop the mark, keep the object.
	return false, 0, c.meta.GCUnmark(ctx, key)
}

// mark examines up to Batch chunks after the cursor that are older than
// the commit age limit (younger ones may still be committed) and marks
// the unreferenced ones. When the listing reaches its end or a chunk too
// young, the cursor goes back to the start and the topic configs are
// examined too.
func (c *Collector) mark(ctx context.Context, renew func() error, now time.Time, st *GCStats) error {
	n, err := c.meta.GCPendingCount(ctx)
	if err != nil {
		return err
	}
	room := c.cfg.MaxPending - int(n)
	if room <= 0 {
		c.log.Warn("gc: pending set is full; marking nothing until the sweep catches up", "pending", n)
		return nil
	}
	cursor, err := c.meta.GCCursor(ctx)
	if err != nil {
		return err
	}
	youngest := now.Add(-c.meta.CommitAgeLimit())
	var batch []bucket.Chunk
	last, wrapped := cursor, true
	for ch, err := range c.bucket.ChunksAfter(ctx, cursor) {
		if errors.Is(err, bucket.ErrForeignKey) {
			last = ch.Key // never deleted; passed over
			continue
		}
		if err != nil {
			return err
		}
		if !ch.ID.Time().Before(youngest) {
			break // this chunk and all after it may still be committed
		}
		if len(batch) >= min(c.cfg.Batch, room) {
			wrapped = false
			break
		}
		batch = append(batch, ch)
		last = ch.Key
	}
	if err := renew(); err != nil {
		return err
	}
	var mu sync.Mutex
	var unused []string
	err = forEach(ctx, c, renew, batch, func(ctx context.Context, ch bucket.Chunk) error {
		refs, _, err := c.chunkTopics(ctx, ch)
		if err != nil {
			if errors.Is(err, objectstore.ErrNotExist) {
				return nil // deleted since the listing
			}
			if ctx.Err() != nil {
				return err
			}
			// A corrupt or unreadable chunk is never deleted: its topics
			// are unknown.
			mu.Lock()
			st.Errors++
			mu.Unlock()
			c.errs.Inc()
			level := slogWarn(errors.Is(err, chunk.ErrCorrupt))
			c.log.Log(ctx, level, "gc: read chunk directory", "chunk", ch.ID, "err", err)
			return nil
		}
		used, err := c.meta.Referenced(ctx, ch.ID.String(), refs)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		st.Examined++
		if !used {
			unused = append(unused, ch.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The mark time is read after the references: a checkpoint taken
	// before the reads (and so possibly naming the chunk) is older than
	// the mark, and the sweep's checkpoint gate waits for a newer one.
	// The pass's start time would be too early.
	marked, err := c.markAtNow(ctx, unused)
	if err != nil {
		return err
	}
	st.Marked += marked
	if wrapped {
		st.Wrapped = true
		last = ""
		if err := c.markTopicConfigs(ctx, st); err != nil {
			return err
		}
	}
	return c.meta.SetGCCursor(ctx, last)
}

// markTopicConfigs marks the topic config objects of incarnations that
// are not registered in Redis: topics deleted (whose config delete
// failed) or whose creation never completed.
func (c *Collector) markTopicConfigs(ctx context.Context, st *GCStats) error {
	topics, err := c.meta.Topics(ctx)
	if err != nil {
		return err
	}
	live := make(map[string]string, len(topics))
	for _, t := range topics {
		live[t.Name] = t.ID
	}
	var unused []string
	for key, err := range c.bucket.ListTopicConfigs(ctx) {
		if err != nil {
			return err
		}
		name, id, err := bucket.ParseTopicConfigKey(key)
		if err != nil {
			continue // foreign: never deleted
		}
		if live[name] != id {
			unused = append(unused, key)
		}
	}
	marked, err := c.markAtNow(ctx, unused)
	st.Marked += marked
	return err
}

// markAtNow marks the keys, found unreferenced by reads that have
// completed, with the metadata store's time read now (Redis TIME, the
// clock of commits and checkpoints), and returns how many were not marked
// before.
func (c *Collector) markAtNow(ctx context.Context, keys []string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now, err := c.meta.Now(ctx)
	if err != nil {
		return 0, err
	}
	return c.meta.GCMark(ctx, now, keys...)
}

// slogWarn is the level of a failure to read a chunk: a corrupt chunk
// needs an operator (warn); a transient failure is retried next cycle.
func slogWarn(corrupt bool) slog.Level {
	if corrupt {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
