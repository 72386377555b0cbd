package objectstore

import (
	"context"
	"iter"
)

// ListerAfter is implemented by stores whose listing can start after a
// key (S3's and MinIO's ListObjectsV2 StartAfter), so that a caller
// resuming from a cursor does not pay for listing the keys before it.
type ListerAfter interface {
	// ListAfter is List restricted to keys that sort after after.
	ListAfter(ctx context.Context, prefix, after string) iter.Seq2[ObjectInfo, error]
}

// ListAfter yields, in key order, the objects under prefix whose keys sort
// after after ("" yields them all): with the store's ListAfter when it has
// one, else by listing from the start and passing over the keys up to
// after.
func ListAfter(ctx context.Context, s Store, prefix, after string) iter.Seq2[ObjectInfo, error] {
	if after == "" {
		return s.List(ctx, prefix)
	}
	if l, ok := s.(ListerAfter); ok {
		return l.ListAfter(ctx, prefix, after)
	}
	return func(yield func(ObjectInfo, error) bool) {
		for info, err := range s.List(ctx, prefix) {
			if err == nil && info.Key <= after {
				continue
			}
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}
