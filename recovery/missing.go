package recovery

import (
	"context"
	"errors"
	"time"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/metadata"
)

// missingChunks lists the bucket's chunks and returns the chunks that the
// snapshot's index names but the bucket no longer holds: garbage
// collection deleted them after retention trimmed (or a topic delete
// dropped) every entry naming them, which happens once a newer
// checkpoint was written. Restoring from an older checkpoint (the newest
// did not decode, or a replica lags) meets them.
func missingChunks(ctx context.Context, b *bucket.Bucket, snap *metadata.Snapshot) (map[string]bool, error) {
	named := map[string]bool{}
	for _, ts := range snap.Topics {
		for _, ps := range ts.Partitions {
			for _, e := range ps.Index {
				named[e.ChunkID] = true
			}
		}
	}
	if len(named) == 0 {
		return nil, nil
	}
	for c, err := range b.ListChunks(ctx, time.Time{}) {
		if errors.Is(err, bucket.ErrForeignKey) {
			continue
		}
		if err != nil {
			return nil, err
		}
		delete(named, c.ID.String())
	}
	return named, nil
}

// dropMissing treats the index entries naming missing chunks as trimmed:
// in each partition, every entry up to the last one naming a missing
// chunk is dropped and the log start offset moves past it. Retention
// trims a partition from its start, so the entries before a collected
// chunk's were trimmed too in the store the snapshot came from. It
// returns the entries dropped.
func dropMissing(snap *metadata.Snapshot, missing map[string]bool) int {
	dropped := 0
	for ti := range snap.Topics {
		ts := &snap.Topics[ti]
		for pi := range ts.Partitions {
			ps := &ts.Partitions[pi]
			last := -1
			for i, e := range ps.Index {
				if missing[e.ChunkID] {
					last = i
				}
			}
			if last < 0 {
				continue
			}
			e := ps.Index[last]
			ps.LogStartOffset = max(ps.LogStartOffset, e.NextOffset())
			ps.Index = ps.Index[last+1:]
			dropped += last + 1
		}
	}
	return dropped
}
