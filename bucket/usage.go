package bucket

import (
	"context"
	"fmt"
	"strings"
)

// PrefixUsage is what the objects under one prefix hold.
type PrefixUsage struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

// Usage is what a bucket holds, as one listing of it found.
type Usage struct {
	// Objects and Bytes count every object in the store, Mamba's or not.
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
	// Prefixes splits them by the key's first path element with its slash
	// ("chunks/", "checkpoints/", "topics/", and any prefix a later layout
	// adds); a key without a slash counts under "".
	Prefixes map[string]PrefixUsage `json:"prefixes"`
	// NewestCheckpoint is the key of the newest checkpoint and
	// NewestCheckpointBytes its size; empty and 0 when there is none.
	NewestCheckpoint      string `json:"newest_checkpoint,omitempty"`
	NewestCheckpointBytes int64  `json:"newest_checkpoint_bytes"`
}

// Usage lists the whole store once and reports its objects and bytes by
// prefix, and the newest checkpoint's size. It costs one LIST request per
// 1,000 objects, so it is a tool for benchmarks and operators, not for a
// hot path.
func (b *Bucket) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Prefixes: map[string]PrefixUsage{}}
	for obj, err := range b.store.List(ctx, "") {
		if err != nil {
			return Usage{}, fmt.Errorf("list bucket: %w", err)
		}
		u.Objects++
		u.Bytes += obj.Size
		prefix := ""
		if i := strings.IndexByte(obj.Key, '/'); i >= 0 {
			prefix = obj.Key[:i+1]
		}
		p := u.Prefixes[prefix]
		p.Objects++
		p.Bytes += obj.Size
		u.Prefixes[prefix] = p
		// Checkpoint keys sort by time, so the last one listed is the
		// newest.
		if prefix == CheckpointPrefix {
			if _, _, err := ParseCheckpointKey(obj.Key); err == nil {
				u.NewestCheckpoint, u.NewestCheckpointBytes = obj.Key, obj.Size
			}
		}
	}
	return u, nil
}
