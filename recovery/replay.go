package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// replayer holds the state of one replay.
type replayer struct {
	bucket *bucket.Bucket
	meta   *metadata.Store
	opts   RestoreOptions
	stats  ReplayStats

	// incarnations lists, per topic name, every incarnation known from
	// the store or the bucket, oldest first.
	incarnations map[string][]metadata.Topic
	// live is the incarnation registered in the store, by name.
	live map[string]metadata.Topic
	// committed holds, per topic name, the chunks the store already has a
	// commit of: an index entry or a commit marker.
	committed map[string]map[string]bool
	// configs holds "name/id" of every topic config found in the bucket.
	configs map[string]bool
}

func (r *replayer) warn(msg string, args ...any) {
	r.opts.logger().Warn(msg, args...)
	if len(r.stats.Warnings) < maxWarnings {
		var sb strings.Builder
		sb.WriteString(msg)
		for i := 0; i+1 < len(args); i += 2 {
			fmt.Fprintf(&sb, " %v=%v", args[i], args[i+1])
		}
		r.stats.Warnings = append(r.stats.Warnings, sb.String())
	}
}

// replay runs Replay against a store whose contents state describes.
func replay(ctx context.Context, b *bucket.Bucket, meta *metadata.Store, since time.Time, state *metadata.Snapshot, opts RestoreOptions) (ReplayStats, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultRestoreConcurrency
	}
	r := &replayer{
		bucket: b, meta: meta, opts: opts,
		stats:        ReplayStats{Since: since},
		incarnations: map[string][]metadata.Topic{},
		live:         map[string]metadata.Topic{},
		committed:    map[string]map[string]bool{},
		configs:      map[string]bool{},
	}
	for _, ts := range state.Topics {
		r.live[ts.Topic.Name] = ts.Topic
		r.incarnations[ts.Topic.Name] = []metadata.Topic{ts.Topic}
		set := map[string]bool{}
		for _, ps := range ts.Partitions {
			for _, e := range ps.Index {
				set[e.ChunkID] = true
			}
		}
		for _, m := range ts.Commits {
			set[m.ChunkID] = true
		}
		r.committed[ts.Topic.Name] = set
	}
	opts.report(Progress{Phase: PhaseList})
	if err := r.registerTopics(ctx); err != nil {
		return r.stats, err
	}
	chunks, err := r.listChunks(ctx, since)
	if err != nil {
		return r.stats, err
	}
	if err := r.replayChunks(ctx, chunks); err != nil {
		return r.stats, err
	}
	r.stats.Topics = len(r.live)
	return r.stats, nil
}

// registerTopics reads the topic configs in the bucket and makes the
// store's registry agree with them: a topic the store lacks is created,
// and one that the bucket knows a newer incarnation of is replaced (it was
// deleted and created again after the checkpoint). A topic in the store
// that has no config left was deleted after the checkpoint, or its config
// has not reached a replica bucket yet; it is kept, with a warning, since
// dropping it could lose records.
func (r *replayer) registerTopics(ctx context.Context) error {
	for key, err := range r.bucket.ListTopicConfigs(ctx) {
		if err != nil {
			return err
		}
		t, err := r.readTopicConfig(ctx, key)
		if errors.Is(err, objectstore.ErrNotExist) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.warn("skip topic config", "key", key, "err", err)
			continue
		}
		known := r.incarnations[t.Name]
		if !slices.ContainsFunc(known, func(k metadata.Topic) bool { return k.ID == t.ID }) {
			known = append(known, t)
			slices.SortStableFunc(known, func(a, b metadata.Topic) int { return compareInt(a.CreatedMS, b.CreatedMS) })
			r.incarnations[t.Name] = known
		}
	}
	names := make([]string, 0, len(r.incarnations))
	for name := range r.incarnations {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		known := r.incarnations[name]
		newest := known[len(known)-1]
		cur, ok := r.live[name]
		switch {
		case ok && cur.ID == newest.ID:
			if !r.configs[name+"/"+cur.ID] {
				r.warn("topic has no config in the bucket: deleted after the checkpoint, or its config is not replicated yet; keeping it", "topic", name)
			}
		case ok:
			if err := r.meta.DeleteTopic(ctx, name); err != nil && !errors.Is(err, metadata.ErrTopicNotFound) {
				return err
			}
			if err := r.meta.CreateTopic(ctx, newest); err != nil {
				return err
			}
			r.live[name] = newest
			r.stats.TopicsReplaced++
			r.warn("topic was deleted and created again after the checkpoint; records of the old incarnation are gone", "topic", name)
		default:
			if err := r.meta.CreateTopic(ctx, newest); err != nil {
				return err
			}
			r.live[name] = newest
			r.stats.TopicsCreated++
		}
	}
	return nil
}

func (r *replayer) readTopicConfig(ctx context.Context, key string) (metadata.Topic, error) {
	cfg, err := withRetry(ctx, func(ctx context.Context) (bucket.TopicConfig, error) { return r.bucket.ReadTopicConfig(ctx, key) })
	if err != nil {
		return metadata.Topic{}, err
	}
	t := metadata.Topic(cfg)
	if err := t.Validate(); err != nil {
		return metadata.Topic{}, err
	}
	r.configs[t.Name+"/"+t.ID] = true
	return t, nil
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// listChunks returns the ids of the chunks at or after since, in id order.
func (r *replayer) listChunks(ctx context.Context, since time.Time) ([]chunkid.ID, error) {
	var ids []chunkid.ID
	listing := &bucket.ChunkListing{Since: since}
	for c, err := range r.bucket.Chunks(ctx, listing) {
		if errors.Is(err, bucket.ErrForeignKey) {
			r.warn("skip object that is not a chunk", "key", c.Key, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, c.ID)
	}
	r.stats.ChunksListed = listing.Listed
	// The listing is in id order already; sorting again costs little and
	// states the invariant replayChunks relies on.
	slices.SortFunc(ids, chunkid.ID.Compare)
	r.stats.ChunksScanned = len(ids)
	return ids, nil
}
