package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/retry"
	"github.com/mambamq/mamba/metadata"
	"github.com/mambamq/mamba/objectstore"
	"github.com/mambamq/mamba/objectstore/envelope"
)

// ReplayMargin is how far before a checkpoint's time restore starts
// replaying chunks when the metadata store's commit age limit is the
// default: metadata.Store.CommitAgeLimit, the oldest a chunk may be when it
// is committed. Every chunk whose commit the checkpoint may lack is younger
// than that at the checkpoint's time (give or take clock skew between
// nodes); older chunks are all in the checkpoint or were never committed.
// A chunk younger than that which was committed before the checkpoint has
// its commit marker in it (markers live at least as long as the limit),
// so replay does not index it again, even if retention had trimmed it.
const ReplayMargin = metadata.MaxCommitAge

// DefaultRestoreConcurrency is how many chunk directories Restore reads at
// once.
const DefaultRestoreConcurrency = 32

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
	// AllowMissingChunks lets a restore go on when the checkpoint it
	// loads names chunks the bucket does not hold: in each partition,
	// every index entry up to the last one naming a missing chunk is
	// dropped (those records are lost) and the log start moves past it.
	// Without it such a restore fails with a *MissingChunksError before
	// changing the store: the chunks may only be late (a replica bucket),
	// and the collector never deletes a chunk the newest checkpoint names.
	AllowMissingChunks bool
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
	// ChunksListed is every object the replay's listing read: it starts
	// after the key below Since's chunks (bucket.ChunkListing), so older
	// chunks are not listed. ChunksScanned are the chunks at or after
	// Since, whose directories were read.
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
	// ChunksMissing are chunks the checkpoint's index names that the
	// bucket does not hold, and EntriesDropped the index entries dropped
	// because of them; both are 0 unless AllowMissingChunks is set (see
	// the package documentation).
	ChunksMissing, EntriesDropped int
	ReplayStats
	Duration time.Duration
}

// Restore rebuilds the metadata store from the bucket: it loads the newest
// checkpoint that decodes, then replays the chunks written since (see the
// package documentation). The store must be empty unless opts.Force is
// set: a store that is not fails with metadata.ErrNotEmpty. No node may use
// the store during a restore. A checkpoint naming chunks the bucket does
// not hold fails the restore with a *MissingChunksError, before the store
// is changed, unless opts.AllowMissingChunks is set. A restore that fails
// later leaves the store partly restored; run it again with Force.
func Restore(ctx context.Context, store objectstore.Store, meta *metadata.Store, opts RestoreOptions) (RestoreSummary, error) {
	start := time.Now()
	var sum RestoreSummary
	empty, err := meta.IsEmpty(ctx)
	if err != nil {
		return sum, err
	}
	if !empty && !opts.Force {
		return sum, fmt.Errorf("restore: %w: it already holds keys under its prefix", metadata.ErrNotEmpty)
	}
	opts.report(Progress{Phase: PhaseCheckpoint})
	b := bucket.New(store)
	snap, err := pickCheckpoint(ctx, b, opts, &sum)
	if err != nil {
		return sum, err
	}
	if !empty {
		if sum.KeysWiped, err = meta.Wipe(ctx); err != nil {
			return sum, err
		}
	}
	state := &metadata.Snapshot{}
	since := time.Time{}
	if snap != nil {
		if err := meta.LoadSnapshot(ctx, snap); err != nil {
			return sum, fmt.Errorf("load checkpoint %s: %w", sum.Checkpoint, err)
		}
		state = snap
		since = sum.CheckpointTime.Add(-meta.CommitAgeLimit())
	}
	sum.ReplayStats, err = replay(ctx, b, meta, since, state, opts)
	sum.Duration = time.Since(start)
	return sum, err
}

// pickCheckpoint reads the newest checkpoint that decodes and checks that
// the bucket holds every chunk it names (dropping the entries of missing
// ones only with AllowMissingChunks). It returns nil when the bucket has
// no checkpoint. It does not touch the metadata store.
func pickCheckpoint(ctx context.Context, b *bucket.Bucket, opts RestoreOptions, sum *RestoreSummary) (*metadata.Snapshot, error) {
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(cps) - 1; i >= 0; i-- {
		key := cps[i].Key
		data, err := withRetry(ctx, func(ctx context.Context) ([]byte, error) { return b.ReadCheckpoint(ctx, cps[i]) })
		if errors.Is(err, objectstore.ErrNotExist) {
			continue // pruned since the listing
		}
		var snap *metadata.Snapshot
		switch {
		case errors.Is(err, envelope.ErrCorrupt):
			// Sealed, but damaged: as corrupt as a checkpoint that does
			// not decode. A missing or wrong key is no corruption: it
			// stops the restore, naming the key id.
		case err != nil:
			return nil, fmt.Errorf("read checkpoint %s: %w", key, err)
		default:
			snap, err = DecodeCheckpoint(data)
		}
		if err != nil {
			sum.CorruptCheckpoints = append(sum.CorruptCheckpoints, CorruptCheckpoint{Key: key, Err: err})
			opts.logger().Warn("skip corrupt checkpoint", "key", key, "err", err)
			continue
		}
		missing, err := missingChunks(ctx, b, snap)
		if err != nil {
			return nil, err
		}
		if len(missing) > 0 {
			if !opts.AllowMissingChunks {
				return nil, missingError(key, missing)
			}
			sum.ChunksMissing = len(missing)
			sum.EntriesDropped = dropMissing(snap, missing)
			opts.logger().Warn("checkpoint names chunks the bucket does not hold; dropping every index entry up to theirs (allowed missing chunks)",
				"checkpoint", key, "chunks", sum.ChunksMissing, "entries", sum.EntriesDropped, "first", bucket.ChunkKey(missing[0]))
		}
		sum.Checkpoint, sum.CheckpointTime = key, snap.Time
		return snap, nil
	}
	return nil, nil
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
	return replay(ctx, bucket.New(store), meta, since, state, opts)
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

// storeRetry is how restore retries a transient bucket failure: at most
// five attempts, backing off from 50ms (with jitter) between them.
var storeRetry = retry.Policy{Base: 50 * time.Millisecond, Max: time.Second, Attempts: 5, Retryable: objectstore.IsRetryable}

// withRetry calls fn under storeRetry and returns its last result.
func withRetry[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	var v T
	err := storeRetry.Do(ctx, func(ctx context.Context) error {
		var err error
		v, err = fn(ctx)
		return err
	})
	return v, err
}
