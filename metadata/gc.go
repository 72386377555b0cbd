package metadata

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Garbage collection (package tiering) keeps its state in two keys, not
// part of a Snapshot (a restored store starts collecting from scratch,
// which only delays deletions):
//
//	mamba:gc:pending   zset    bucket key -> unix ms when the collector first
//	                           found the object unreferenced (Redis's clock)
//	mamba:gc:cursor    string  the last chunk key the collector examined
//
// The pending set is bounded by its caller (MaxGCPending in package
// tiering): a member leaves it when its object is deleted, or is found
// referenced again, or is found missing.

func (s *Store) gcKey(suffix string) string { return s.prefix + ":gc:" + suffix }

// Now returns Redis's clock, which every node shares: the time garbage
// collection marks objects with and compares marks against.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	t, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return time.Time{}, unavailable("read the time", err)
	}
	return t, nil
}

// GCMark records that the objects (bucket keys) were found unreferenced
// at t, keeping the earlier mark of an object marked before. It returns
// how many were not marked before.
func (s *Store) GCMark(ctx context.Context, t time.Time, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	members := make([]redis.Z, len(keys))
	for i, k := range keys {
		members[i] = redis.Z{Score: float64(t.UnixMilli()), Member: k}
	}
	n, err := s.rdb.ZAddNX(ctx, s.gcKey("pending"), members...).Result()
	if err != nil {
		return 0, unavailable("mark objects unreferenced", err)
	}
	return int(n), nil
}

// GCUnmark forgets the objects' marks: they were deleted, or are
// referenced again.
func (s *Store) GCUnmark(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	if err := s.rdb.ZRem(ctx, s.gcKey("pending"), args...).Err(); err != nil {
		return unavailable("unmark objects", err)
	}
	return nil
}

// GCMarked is one object of the pending set and when it was marked.
type GCMarked struct {
	Key    string
	Marked time.Time
}

// GCPending returns up to n objects marked before t, oldest mark first.
func (s *Store) GCPending(ctx context.Context, before time.Time, n int) ([]GCMarked, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.gcKey("pending"), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before.UnixMilli(), 10), Count: int64(max(n, 1)),
	}).Result()
	if err != nil {
		return nil, unavailable("read pending objects", err)
	}
	out := make([]GCMarked, 0, len(zs))
	for _, z := range zs {
		key, _ := z.Member.(string)
		out = append(out, GCMarked{Key: key, Marked: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// GCPendingCount returns the number of objects in the pending set.
func (s *Store) GCPendingCount(ctx context.Context) (int64, error) {
	n, err := s.rdb.ZCard(ctx, s.gcKey("pending")).Result()
	if err != nil {
		return 0, unavailable("count pending objects", err)
	}
	return n, nil
}

// GCCursor returns the last chunk key the collector examined, "" for
// none (start from the first).
func (s *Store) GCCursor(ctx context.Context) (string, error) {
	v, err := s.rdb.Get(ctx, s.gcKey("cursor")).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", unavailable("read the collector's cursor", err)
	}
	return v, nil
}

// SetGCCursor records the last chunk key the collector examined; ""
// starts the next pass from the first chunk.
func (s *Store) SetGCCursor(ctx context.Context, key string) error {
	var err error
	if key == "" {
		err = s.rdb.Del(ctx, s.gcKey("cursor")).Err()
	} else {
		err = s.rdb.Set(ctx, s.gcKey("cursor"), key, 0).Err()
	}
	if err != nil {
		return unavailable("write the collector's cursor", err)
	}
	return nil
}
