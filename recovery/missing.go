package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mambamq/mamba/bucket"
	"github.com/mambamq/mamba/internal/chunkid"
	"github.com/mambamq/mamba/metadata"
)

// ErrMissingChunks is wrapped by the error of a restore whose checkpoint
// names chunks the bucket does not hold, when RestoreOptions.
// AllowMissingChunks is not set.
var ErrMissingChunks = errors.New("the checkpoint names chunks the bucket does not hold")

// maxMissingListed bounds MissingChunksError.Keys; Count stays exact.
const maxMissingListed = 5

// MissingChunksError is the error of a restore that stopped, before
// changing the metadata store, because the checkpoint it chose names
// chunks the bucket does not hold.
type MissingChunksError struct {
	// Checkpoint is the key of the checkpoint.
	Checkpoint string
	// Count is how many chunks it names that are missing; Keys are the
	// bucket keys of the first few (in key order).
	Count int
	Keys  []string
}

func (e *MissingChunksError) Error() string {
	more := ""
	if e.Count > len(e.Keys) {
		more = fmt.Sprintf(" and %d more", e.Count-len(e.Keys))
	}
	return fmt.Sprintf("%v: checkpoint %s names %d missing chunks (%s%s). "+
		"A replica bucket may not have received them yet (replication does not keep write order): "+
		"wait until it is in sync (mamba dr status) and restore again. "+
		"If they are gone for good, restore allowing missing chunks (mamba restore --allow-missing-chunks, "+
		"RestoreOptions.AllowMissingChunks): every index entry up to the last one naming a missing chunk "+
		"is then dropped and its records are lost",
		ErrMissingChunks, e.Checkpoint, e.Count, strings.Join(e.Keys, ", "), more)
}

func (e *MissingChunksError) Unwrap() error { return ErrMissingChunks }

// missingChunks returns, in id order, the chunks that the snapshot's
// index names but the bucket does not hold. It lists only the chunks from
// the oldest named one (with the store's "start after" when it has one)
// and stops at the newest named one, so its cost is that of the
// checkpoint's index, not of the bucket's history.
func missingChunks(ctx context.Context, b *bucket.Bucket, snap *metadata.Snapshot) ([]string, error) {
	named := map[string]bool{}
	var oldest, newest chunkid.ID
	parsed := true // every named id parses: the listing can be bounded
	for _, ts := range snap.Topics {
		for _, ps := range ts.Partitions {
			for _, e := range ps.Index {
				if named[e.ChunkID] {
					continue
				}
				named[e.ChunkID] = true
				id, err := chunkid.Parse(e.ChunkID)
				if err != nil {
					parsed = false
					continue
				}
				if len(named) == 1 || id.Compare(oldest) < 0 {
					oldest = id
				}
				if len(named) == 1 || id.Compare(newest) > 0 {
					newest = id
				}
			}
		}
	}
	if len(named) == 0 {
		return nil, nil
	}
	listing := &bucket.ChunkListing{}
	if parsed {
		listing.Since = oldest.Time()
	}
	for c, err := range b.Chunks(ctx, listing) {
		if errors.Is(err, bucket.ErrForeignKey) {
			continue
		}
		if err != nil {
			return nil, err
		}
		delete(named, c.ID.String())
		if len(named) == 0 || (parsed && c.ID.Compare(newest) >= 0) {
			break
		}
	}
	missing := make([]string, 0, len(named))
	for id := range named {
		missing = append(missing, id)
	}
	slices.Sort(missing)
	return missing, nil
}

// missingError is the error for the missing chunks of a checkpoint.
func missingError(checkpoint string, missing []string) error {
	e := &MissingChunksError{Checkpoint: checkpoint, Count: len(missing)}
	for _, id := range missing[:min(len(missing), maxMissingListed)] {
		e.Keys = append(e.Keys, bucket.ChunkKey(id))
	}
	return e
}

// dropMissing treats the index entries naming missing chunks as trimmed:
// in each partition, every entry up to the last one naming a missing
// chunk is dropped and the log start offset moves past it. It returns the
// entries dropped. Only a restore with AllowMissingChunks does this: the
// records of every dropped entry are lost, those of chunks still in the
// bucket included.
func dropMissing(snap *metadata.Snapshot, missing []string) int {
	gone := make(map[string]bool, len(missing))
	for _, id := range missing {
		gone[id] = true
	}
	dropped := 0
	for ti := range snap.Topics {
		ts := &snap.Topics[ti]
		for pi := range ts.Partitions {
			ps := &ts.Partitions[pi]
			last := -1
			for i, e := range ps.Index {
				if gone[e.ChunkID] {
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
