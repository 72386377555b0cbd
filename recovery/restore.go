package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mambamq/mamba/chunk"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
)

// Object key prefixes that ingest writes.
const (
	ChunkPrefix = "chunks/"
	TopicPrefix = "topics/"
)

// ReplayMargin is how far before a checkpoint's time restore starts
// replaying chunks. A chunk is committed within its node's write timeout of
// being sealed, and its commit marker lives ten minutes, so every chunk
// whose commit the checkpoint may lack is younger than this, give or take
// clock skew between nodes; older chunks are all in the checkpoint.
const ReplayMargin = 10 * time.Minute

// DefaultRestoreConcurrency is how many chunk directories Restore reads at
// once.
const DefaultRestoreConcurrency = 32

// directoryReadSize is the first ranged read of a chunk: the header and,
// for most chunks, the whole directory.
const directoryReadSize = 8 << 10

// maxReadAhead bounds the chunk directories read but not yet committed,
// and commitPipeline the chunks whose commits go in one pipeline.
const (
	maxReadAhead   = 4096
	commitPipeline = 256
)

// maxWarnings bounds RestoreSummary.Warnings; the counts stay exact.
const maxWarnings = 100

// Restore phases, reported through RestoreOptions.Progress.
const (
	PhaseCheckpoint = "checkpoint" // reading and loading the checkpoint
	PhaseList       = "list"       // listing topic configs and chunks
	PhaseReplay     = "replay"     // replaying chunks; Done and Total count chunks
)

// Progress reports how far a restore is.
type Progress struct {
	Phase string
	// Done and Total count the phase's steps (chunks, when replaying);
	// Total is 0 when unknown.
	Done, Total int
}

// RestoreOptions configures Restore and Replay.
type RestoreOptions struct {
	// Force deletes every key under the metadata store's prefix before
	// restoring, instead of refusing a store that is not empty.
	Force bool
	// Concurrency is how many chunk directories are read at once;
	// DefaultRestoreConcurrency when zero.
	Concurrency int
	// Progress, if set, is called as the restore advances, from the
	// calling goroutine.
	Progress func(Progress)
	// Log receives warnings as they happen; none when nil.
	Log *slog.Logger
}

// CorruptCheckpoint is a checkpoint that Restore could not decode.
type CorruptCheckpoint struct {
	Key string
	Err error
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	// Since is the chunk time replay started at; zero means every chunk.
	Since time.Time
	// ChunksListed is every chunk in the bucket; ChunksScanned those at or
	// after Since, whose directories were read.
	ChunksListed, ChunksScanned int
	// ChunksReplayed had at least one batch committed; ChunksSkipped had
	// nothing to commit (already in the store, or only batches of deleted
	// topics); ChunksUnreadable were corrupt or vanished.
	ChunksReplayed, ChunksSkipped, ChunksUnreadable int
	// BatchesIndexed and RecordsIndexed were added to the index.
	BatchesIndexed, RecordsIndexed int
	// BatchesDuplicate were dropped by their idempotency key: the request
	// was already indexed.
	BatchesDuplicate int
	// BatchesSkipped belong to deleted topics or cannot be indexed.
	BatchesSkipped int
	// TopicsCreated were registered from topic configs in the bucket
	// (topics created after the checkpoint); TopicsReplaced were in the
	// checkpoint but had been deleted and created again since.
	TopicsCreated, TopicsReplaced int
	// Topics is the number of topics in the store afterwards.
	Topics int
	// Warnings describe what was skipped and why (the first 100).
	Warnings []string
}

// RestoreSummary is what Restore did.
type RestoreSummary struct {
	// Checkpoint is the key of the checkpoint loaded, "" if there was
	// none; CheckpointTime its snapshot time.
	Checkpoint     string
	CheckpointTime time.Time
	// CorruptCheckpoints were newer than the one loaded and did not
	// decode.
	CorruptCheckpoints []CorruptCheckpoint
	// KeysWiped were deleted because of Force.
	KeysWiped int
	ReplayStats
	Duration time.Duration
}

// Restore rebuilds the metadata store from the bucket: it loads the newest
// checkpoint that decodes, then replays the chunks written since (see the
// package documentation). The store must be empty unless opts.Force is
// set: a store that is not fails with metadata.ErrNotEmpty. No node may use
// the store during a restore. A restore that fails part way leaves the
// store partly restored; run it again with Force.
func Restore(ctx context.Context, store objectstore.Store, meta *metadata.Store, opts RestoreOptions) (RestoreSummary, error) {
	start := time.Now()
	var sum RestoreSummary
	empty, err := meta.IsEmpty(ctx)
	if err != nil {
		return sum, err
	}
	if !empty {
		if !opts.Force {
			return sum, fmt.Errorf("restore: %w: it already holds keys under its prefix", metadata.ErrNotEmpty)
		}
		if sum.KeysWiped, err = meta.Wipe(ctx); err != nil {
			return sum, err
		}
	}
	opts.report(Progress{Phase: PhaseCheckpoint})
	keys, err := listCheckpoints(ctx, store)
	if err != nil {
		return sum, err
	}
	state := &metadata.Snapshot{}
	for i := len(keys) - 1; i >= 0; i-- {
		data, err := getWithRetry(ctx, store, keys[i])
		if errors.Is(err, objectstore.ErrNotExist) {
			continue // pruned since the listing
		}
		if err != nil {
			return sum, fmt.Errorf("read checkpoint %s: %w", keys[i], err)
		}
		snap, err := DecodeCheckpoint(data)
		if err != nil {
			sum.CorruptCheckpoints = append(sum.CorruptCheckpoints, CorruptCheckpoint{Key: keys[i], Err: err})
			opts.logger().Warn("skip corrupt checkpoint", "key", keys[i], "err", err)
			continue
		}
		if err := meta.LoadSnapshot(ctx, snap); err != nil {
			return sum, fmt.Errorf("load checkpoint %s: %w", keys[i], err)
		}
		sum.Checkpoint, sum.CheckpointTime = keys[i], snap.Time
		state = snap
		break
	}
	since := time.Time{}
	if sum.Checkpoint != "" {
		since = sum.CheckpointTime.Add(-ReplayMargin)
	}
	sum.ReplayStats, err = replay(ctx, store, meta, since, state, opts)
	sum.Duration = time.Since(start)
	return sum, err
}

// Replay indexes the chunks whose id time is at least since and whose
// batches the store does not hold yet, as the second half of Restore does.
// Running it again changes nothing: batches already indexed are found in
// the store and skipped.
func Replay(ctx context.Context, store objectstore.Store, meta *metadata.Store, since time.Time, opts RestoreOptions) (ReplayStats, error) {
	state, err := meta.Snapshot(ctx)
	if err != nil {
		return ReplayStats{}, err
	}
	return replay(ctx, store, meta, since, state, opts)
}

func (o RestoreOptions) report(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

func (o RestoreOptions) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// replayer holds the state of one replay.
type replayer struct {
	store objectstore.Store
	meta  *metadata.Store
	opts  RestoreOptions
	stats ReplayStats

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
func replay(ctx context.Context, store objectstore.Store, meta *metadata.Store, since time.Time, state *metadata.Snapshot, opts RestoreOptions) (ReplayStats, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultRestoreConcurrency
	}
	r := &replayer{
		store: store, meta: meta, opts: opts,
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

// topicConfig is a topic's configuration as ingest stores it in the
// bucket, at topics/<name>/<id>.json.
type topicConfig struct {
	Name        string `json:"name"`
	ID          string `json:"id"`
	Partitions  int    `json:"partitions"`
	RetentionMS int64  `json:"retention_ms"`
	CreatedMS   int64  `json:"created_ms"`
}

// registerTopics reads the topic configs in the bucket and makes the
// store's registry agree with them: a topic the store lacks is created,
// and one that the bucket knows a newer incarnation of is replaced (it was
// deleted and created again after the checkpoint). A topic in the store
// that has no config left was deleted after the checkpoint, or its config
// has not reached a replica bucket yet; it is kept, with a warning, since
// dropping it could lose records.
func (r *replayer) registerTopics(ctx context.Context) error {
	for obj, err := range r.store.List(ctx, TopicPrefix) {
		if err != nil {
			return fmt.Errorf("list topic configs: %w", err)
		}
		t, err := r.readTopicConfig(ctx, obj.Key)
		if errors.Is(err, objectstore.ErrNotExist) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			r.warn("skip topic config", "key", obj.Key, "err", err)
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
	rest, _ := strings.CutPrefix(key, TopicPrefix)
	name, file, ok := strings.Cut(rest, "/")
	id, isJSON := strings.CutSuffix(file, ".json")
	if !ok || !isJSON || id == "" || strings.Contains(id, "/") {
		return metadata.Topic{}, fmt.Errorf("not a topic config key")
	}
	data, err := getWithRetry(ctx, r.store, key)
	if err != nil {
		return metadata.Topic{}, err
	}
	var cfg topicConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return metadata.Topic{}, fmt.Errorf("decode topic config: %w", err)
	}
	t := metadata.Topic(cfg)
	if err := t.Validate(); err != nil {
		return metadata.Topic{}, err
	}
	if t.Name != name || t.ID != id {
		return metadata.Topic{}, fmt.Errorf("config names topic %s incarnation %s", t.Name, t.ID)
	}
	r.configs[name+"/"+id] = true
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
	for obj, err := range r.store.List(ctx, ChunkPrefix) {
		if err != nil {
			return nil, fmt.Errorf("list chunks: %w", err)
		}
		r.stats.ChunksListed++
		id, err := chunkid.Parse(strings.TrimPrefix(obj.Key, ChunkPrefix))
		if err != nil {
			r.warn("skip object that is not a chunk", "key", obj.Key, "err", err)
			continue
		}
		if id.Time().Before(since) {
			continue
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, chunkid.ID.Compare)
	r.stats.ChunksScanned = len(ids)
	return ids, nil
}

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
				d.batches, d.err = readDirectory(ctx, r.store, id)
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

// readDirectory reads a chunk's header and directory with one ranged read,
// or two when the directory is large.
func readDirectory(ctx context.Context, store objectstore.Store, id chunkid.ID) ([]chunk.BatchInfo, error) {
	key := ChunkPrefix + id.String()
	b, err := getRangeWithRetry(ctx, store, key, 0, directoryReadSize)
	if err != nil {
		return nil, err
	}
	h, err := chunk.ReadHeader(b)
	if err != nil {
		return nil, err
	}
	end := chunk.HeaderSize + h.DirectoryLength
	if int64(len(b)) < end {
		more, err := getRangeWithRetry(ctx, store, key, int64(len(b)), end-int64(len(b)))
		if err != nil {
			return nil, err
		}
		b = append(b, more...)
	}
	if int64(len(b)) < end {
		return nil, fmt.Errorf("%w: chunk is %d bytes, its directory ends at %d", chunk.ErrCorrupt, len(b), end)
	}
	cid, batches, err := chunk.DecodeDirectory(h, b[chunk.HeaderSize:end])
	if err != nil {
		return nil, err
	}
	if cid != id.String() {
		return nil, fmt.Errorf("%w: chunk names itself %s", chunk.ErrCorrupt, cid)
	}
	return batches, nil
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

// retries bounds the attempts at a transient object store failure.
const retries = 5

func getWithRetry(ctx context.Context, store objectstore.Store, key string) ([]byte, error) {
	var b []byte
	err := withRetry(ctx, func() error {
		var err error
		b, err = store.Get(ctx, key)
		return err
	})
	return b, err
}

func getRangeWithRetry(ctx context.Context, store objectstore.Store, key string, off, n int64) ([]byte, error) {
	var b []byte
	err := withRetry(ctx, func() error {
		var err error
		b, err = store.GetRange(ctx, key, off, n)
		return err
	})
	return b, err
}

// withRetry calls fn until it succeeds, fails for good, or has failed
// transiently retries times, backing off between attempts.
func withRetry(ctx context.Context, fn func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !objectstore.IsRetryable(err) || attempt == retries {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}
