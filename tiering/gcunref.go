package tiering

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/objectstore"
)

// handOver marks the chunks that trims left unreferenced (each topic's
// metadata.Store.TakeUnreferenced list), so that a chunk retention trimmed
// is marked in the next pass instead of when the cursor's listing next
// reaches it. It takes at most Batch objects (and no more than the
// pending set has room for), from the topics in turn starting at a random
// one. A taken chunk is marked only if no topic it holds names it (read
// after taking it, the mark's time read after that) and it is past the
// commit age limit; otherwise, or if it cannot be read, it is left to the
// listing, which still finds every unreferenced chunk.
func (c *Collector) handOver(ctx context.Context, renew func() error, st *GCStats) error {
	n, err := c.meta.GCPendingCount(ctx)
	if err != nil {
		return err
	}
	budget := min(c.cfg.Batch, c.cfg.MaxPending-int(n))
	if budget <= 0 {
		return nil
	}
	ids, err := c.takeUnreferenced(ctx, budget)
	if err != nil || len(ids) == 0 {
		return err
	}
	st.HandedOver += len(ids)
	start, err := c.meta.Now(ctx)
	if err != nil {
		return err
	}
	youngest := start.Add(-c.meta.CommitAgeLimit())
	var mu sync.Mutex
	var unused []string
	err = forEach(ctx, c, renew, ids, func(ctx context.Context, id string) error {
		key := bucket.ChunkKey(id)
		cid, err := bucket.ParseChunkKey(key)
		if err != nil || !cid.Time().Before(youngest) {
			return nil // not a chunk, or may still be committed: the listing's
		}
		ch := bucket.Chunk{Key: key, ID: cid}
		refs, _, err := c.chunkTopics(ctx, ch)
		if errors.Is(err, objectstore.ErrNotExist) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			c.log.Debug("gc: read handed-over chunk's directory; left to the listing", "chunk", id, "err", err)
			return nil
		}
		used, err := c.meta.Referenced(ctx, id, refs)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		st.Examined++
		if !used {
			unused = append(unused, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The mark's time is read after every reference read: a checkpoint
	// taken before it was taken after the reads.
	now, err := c.meta.Now(ctx)
	if err != nil {
		return err
	}
	marked, err := c.meta.GCMark(ctx, now, unused...)
	st.Marked += marked
	return err
}

// takeUnreferenced takes up to n objects from the topics' lists of
// objects their trims left unreferenced.
func (c *Collector) takeUnreferenced(ctx context.Context, n int) ([]string, error) {
	topics, err := c.meta.Topics(ctx)
	if err != nil || len(topics) == 0 {
		return nil, err
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	counts, err := c.meta.UnreferencedCounts(ctx, names)
	if err != nil {
		return nil, err
	}
	var ids []string
	first := rand.IntN(len(names))
	for i := range names {
		j := (first + i) % len(names)
		if counts[j] == 0 || len(ids) >= n {
			continue
		}
		got, err := c.meta.TakeUnreferenced(ctx, names[j], n-len(ids))
		if err != nil {
			return ids, err
		}
		ids = append(ids, got...)
	}
	return ids, nil
}
