package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/objectstore"
)

// BucketState is what CompareBuckets learns of one bucket by listing its
// chunks and checkpoints.
type BucketState struct {
	Chunks               int        `json:"chunks"`
	NewestChunk          string     `json:"newest_chunk,omitempty"`
	NewestChunkTime      *time.Time `json:"newest_chunk_time,omitempty"`
	Checkpoints          int        `json:"checkpoints"`
	NewestCheckpoint     string     `json:"newest_checkpoint,omitempty"`
	NewestCheckpointTime *time.Time `json:"newest_checkpoint_time,omitempty"`

	chunkKeys, ckptKeys []string // in key order
}

// ObjectReplication is the replication status the source store reports
// for one object.
type ObjectReplication struct {
	Key    string `json:"key"`
	Status string `json:"status"`
}

// ReplicaReport compares a bucket with its replica.
type ReplicaReport struct {
	Source BucketState `json:"source"`
	Target BucketState `json:"target"`
	// InSync is true when every chunk and checkpoint of the source is in
	// the target.
	InSync bool `json:"in_sync"`
	// LagMillis is how much older the target's newest chunk is than the
	// source's, from the times in their ids.
	LagMillis int64 `json:"lag_ms"`
	// ChunksNewer and CheckpointsNewer count source keys after the
	// target's newest key.
	ChunksNewer      int `json:"chunks_newer"`
	CheckpointsNewer int `json:"checkpoints_newer"`
	// ChunksMissing and CheckpointsMissing count source keys the target
	// lacks, wherever they sort (replication need not keep order).
	ChunksMissing      int `json:"chunks_missing"`
	CheckpointsMissing int `json:"checkpoints_missing"`
	// Replication is the store's own status of the newest source objects,
	// when it reports one (minio-go stores).
	Replication []ObjectReplication `json:"replication,omitempty"`
}

// Lag is LagMillis as a duration.
func (r ReplicaReport) Lag() time.Duration { return time.Duration(r.LagMillis) * time.Millisecond }

// CompareOptions configures CompareBuckets.
type CompareOptions struct {
	// ReplicationStatus asks the source store for the replication status
	// of its newest ReplicationChecked chunks and its newest checkpoint.
	ReplicationStatus bool
	// Now is the clock, for the lag of a target that holds no chunk;
	// time.Now when nil.
	Now func() time.Time
}

// ReplicationChecked is how many of the newest source chunks
// CompareBuckets asks the store about, besides the newest checkpoint.
const ReplicationChecked = 3

// CompareBuckets lists the chunks and checkpoints of source and of its
// replica target and reports how far the replica is behind. It reads
// every chunk key of both buckets.
func CompareBuckets(ctx context.Context, source, target objectstore.Store, opts CompareOptions) (ReplicaReport, error) {
	var r ReplicaReport
	src, err := readBucketState(ctx, bucket.New(source))
	if err != nil {
		return r, fmt.Errorf("source: %w", err)
	}
	dst, err := readBucketState(ctx, bucket.New(target))
	if err != nil {
		return r, fmt.Errorf("target: %w", err)
	}
	r.Source, r.Target = src, dst
	r.ChunksNewer, r.ChunksMissing = behind(src.chunkKeys, dst.chunkKeys, dst.NewestChunk)
	r.CheckpointsNewer, r.CheckpointsMissing = behind(src.ckptKeys, dst.ckptKeys, dst.NewestCheckpoint)
	r.InSync = r.ChunksMissing == 0 && r.CheckpointsMissing == 0
	if src.NewestChunkTime != nil {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		if dst.NewestChunkTime == nil {
			// Everything the source holds is missing: the lag is its age.
			r.LagMillis = now().Sub(*src.NewestChunkTime).Milliseconds()
		} else if d := src.NewestChunkTime.Sub(*dst.NewestChunkTime); d > 0 {
			r.LagMillis = d.Milliseconds()
		}
	}
	if opts.ReplicationStatus {
		r.Replication = replicationStatus(ctx, source, src)
	}
	return r, nil
}

// replicationStatus asks the source store about its newest objects; it
// returns nothing if the store cannot tell.
func replicationStatus(ctx context.Context, store objectstore.Store, src BucketState) []ObjectReplication {
	keys := src.chunkKeys[max(len(src.chunkKeys)-ReplicationChecked, 0):]
	if src.NewestCheckpoint != "" {
		keys = append(keys[:len(keys):len(keys)], src.NewestCheckpoint)
	}
	var out []ObjectReplication
	for _, k := range keys {
		status, ok, err := objectstore.ReplicationStatus(ctx, store, k)
		if !ok {
			break // the store cannot tell
		}
		if errors.Is(err, objectstore.ErrNotExist) {
			continue // deleted since the listing
		}
		if err != nil {
			status = "error: " + err.Error()
		} else if status == "" {
			status = "none (no replication rule applies)"
		}
		out = append(out, ObjectReplication{Key: k, Status: status})
	}
	return out
}

func readBucketState(ctx context.Context, b *bucket.Bucket) (BucketState, error) {
	var st BucketState
	var newestID chunkid.ID
	for c, err := range b.ListChunks(ctx, time.Time{}) {
		if errors.Is(err, bucket.ErrForeignKey) {
			continue // not a chunk
		}
		if err != nil {
			return st, err
		}
		st.chunkKeys = append(st.chunkKeys, c.Key)
		if st.NewestChunk == "" || c.ID.Compare(newestID) > 0 {
			newestID, st.NewestChunk = c.ID, c.Key
			t := c.ID.Time().UTC()
			st.NewestChunkTime = &t
		}
	}
	st.Chunks = len(st.chunkKeys)
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		return st, err
	}
	for _, cp := range cps {
		st.ckptKeys = append(st.ckptKeys, cp.Key)
	}
	st.Checkpoints = len(cps)
	if len(cps) > 0 {
		// Keys list in order, and the 20-digit time sorts them by time.
		newest := cps[len(cps)-1]
		t := newest.Time.UTC()
		st.NewestCheckpoint, st.NewestCheckpointTime = newest.Key, &t
	}
	return st, nil
}

// behind counts the keys of src after newest, and the keys of src that
// dst lacks. Both lists are in key order.
func behind(src, dst []string, newest string) (newer, missing int) {
	j := 0
	for _, k := range src {
		if newest == "" || k > newest {
			newer++
		}
		for j < len(dst) && dst[j] < k {
			j++
		}
		if j == len(dst) || dst[j] != k {
			missing++
		}
	}
	return newer, missing
}
