package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// IndexEntry locates one batch: the records [BaseOffset, BaseOffset+Records)
// of a partition live in chunk ChunkID at bytes [Offset, Offset+Length).
type IndexEntry struct {
	BaseOffset int64
	Records    int
	ChunkID    string
	Offset     int64
	Length     int64
}

// NextOffset is the offset just past the entry's last record.
func (e IndexEntry) NextOffset() int64 { return e.BaseOffset + int64(e.Records) }

func parseEntry(member string) (IndexEntry, error) {
	f := strings.Split(member, "|")
	if len(f) != 5 {
		return IndexEntry{}, fmt.Errorf("malformed index entry %q", member)
	}
	var e IndexEntry
	var err1, err2, err3, err4 error
	e.BaseOffset, err1 = strconv.ParseInt(f[0], 10, 64)
	e.Records, err2 = strconv.Atoi(f[1])
	e.ChunkID = f[2]
	e.Offset, err3 = strconv.ParseInt(f[3], 10, 64)
	e.Length, err4 = strconv.ParseInt(f[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return IndexEntry{}, fmt.Errorf("malformed index entry %q: %w", member, err)
	}
	return e, nil
}

// Lookup returns the partition's offsets and up to maxEntries index
// entries in offset order, the first of them covering offset, all read in
// one MULTI so they agree with each other. At the high watermark it returns
// no entries and no error: the caller may wait for a commit. Below the log
// start offset or above the high watermark it fails with
// ErrOffsetOutOfRange (and still returns the offsets).
func (s *Store) Lookup(ctx context.Context, topic string, partition int32, offset int64, maxEntries int) ([]IndexEntry, PartitionStats, error) {
	maxEntries = max(maxEntries, 1)
	field := strconv.Itoa(int(partition))
	idx := s.indexKey(topic, partition)
	var parts *redis.StringCmd
	var hw, lso *redis.StringCmd
	var covering, after *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		parts = p.HGet(ctx, s.topicKey(topic, "meta"), "partitions")
		hw = p.HGet(ctx, s.topicKey(topic, "hw"), field)
		lso = p.HGet(ctx, s.topicKey(topic, "lso"), field)
		covering = p.ZRevRangeByScore(ctx, idx, &redis.ZRangeBy{Max: strconv.FormatInt(offset, 10), Min: "-inf", Count: 1})
		if maxEntries > 1 {
			after = p.ZRangeByScore(ctx, idx, &redis.ZRangeBy{Min: "(" + strconv.FormatInt(offset, 10), Max: "+inf", Count: int64(maxEntries - 1)})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, PartitionStats{}, unavailable("lookup "+topic, err)
	}
	n, err := parts.Int()
	if err != nil {
		return nil, PartitionStats{}, fmt.Errorf("lookup %s: %w", topic, ErrTopicNotFound)
	}
	if partition < 0 || int(partition) >= n {
		return nil, PartitionStats{}, fmt.Errorf("lookup %s/%d: %w", topic, partition, ErrPartitionNotFound)
	}
	st := PartitionStats{Partition: partition, HighWatermark: parseOffset(hw.Val()), LogStartOffset: parseOffset(lso.Val())}
	if offset < st.LogStartOffset || offset > st.HighWatermark {
		return nil, st, fmt.Errorf("lookup %s/%d at %d (log start %d, high watermark %d): %w",
			topic, partition, offset, st.LogStartOffset, st.HighWatermark, ErrOffsetOutOfRange)
	}
	if offset == st.HighWatermark {
		return nil, st, nil
	}
	members := covering.Val()
	if after != nil {
		members = append(members, after.Val()...)
	}
	entries := make([]IndexEntry, 0, len(members))
	for _, m := range members {
		e, err := parseEntry(m)
		if err != nil {
			return nil, st, fmt.Errorf("lookup %s/%d: %w", topic, partition, err)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 || entries[0].BaseOffset > offset || entries[0].NextOffset() <= offset {
		// Offsets below the high watermark are always indexed; a hole
		// means the index is damaged and must be rebuilt from the bucket.
		return nil, st, fmt.Errorf("lookup %s/%d: no index entry covers offset %d below high watermark %d",
			topic, partition, offset, st.HighWatermark)
	}
	return entries, st, nil
}
