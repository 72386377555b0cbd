package metadata

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Resetting a consumer group's committed offsets (scripts/reset_offsets.lua)
// and finding the offset of a point in time, for POST
// /v1/groups/{group}/offsets/reset.

// MaxResetOffsets bounds the offsets one ResetGroupOffsets call sets.
const MaxResetOffsets = 10000

// ResetGroupOffsets sets the group's committed offsets, all or none, and
// adds the group to the groups set. While a member's session runs (by
// Redis's clock) it fails with ErrGroupNotEmpty unless force is set; with
// force, every reset partition that has an owner gets a new lease, so
// that the owner's commits under the old one are refused (ErrLeaseLost)
// and it reads again from the reset offset. It returns the number of live
// members.
func (s *Store) ResetGroupOffsets(ctx context.Context, group string, offsets []GroupOffset, force bool) (int, error) {
	if len(offsets) == 0 || len(offsets) > MaxResetOffsets {
		return 0, fmt.Errorf("reset offsets of group %s: %d offsets, want 1 to %d", group, len(offsets), MaxResetOffsets)
	}
	args := []any{"0", len(offsets)}
	if force {
		args[0] = "1"
	}
	for _, o := range offsets {
		if o.Offset < 0 {
			return 0, fmt.Errorf("reset offsets of group %s: offset %d of %s/%d is negative", group, o.Offset, o.Topic, o.Partition)
		}
		args = append(args, o.Topic+"/"+strconv.Itoa(int(o.Partition)), o.Offset)
	}
	if err := s.checkGroupCount(ctx, group); err != nil {
		return 0, err
	}
	keys := []string{s.groupKey(group, "expiry"), s.groupKey(group, "owners"), s.groupKey(group, "offsets"),
		s.groupKey(group, "lease"), s.groupKey(group, "meta"), s.groupKey(group, "revoking"), s.groupKey(group, "assigned")}
	live, err := resetOffsetsScript.Run(ctx, s.rdb, keys, args...).Int()
	if err != nil {
		if strings.Contains(err.Error(), "GROUP_NOT_EMPTY") {
			return 0, fmt.Errorf("group %s: %w", group, ErrGroupNotEmpty)
		}
		return 0, unavailable("reset offsets of group "+group, err)
	}
	if err := s.rdb.SAdd(ctx, s.groupsKey(), group).Err(); err != nil {
		return live, unavailable("reset offsets of group "+group, err)
	}
	return live, nil
}

// OffsetForTime returns the offset of the first record of the partition
// appended at or after t: the base offset of the first index entry whose
// chunk was created (its append time, decoded from the chunk id, to the
// millisecond) at or after t. All records of one entry share its append
// time, so the answer is exact for append times; it is the partition's
// next offset to be written when no entry is that recent, and the first
// entry's base offset when every entry is. Entries whose object id
// carries no time count as older than t.
//
// It binary-searches the index, which assumes append times rise with
// offsets: they do for the chunks one node writes; chunks of different
// nodes interleave within their clocks' skew, so near such a boundary the
// answer may be an entry or two off. Each step reads one entry: about
// log2(entries) round trips.
func (s *Store) OffsetForTime(ctx context.Context, topic string, partition int32, t time.Time, highWatermark int64) (int64, error) {
	key := s.indexKey(topic, partition)
	n, err := s.rdb.ZCard(ctx, key).Result()
	if err != nil {
		return 0, unavailable("offset for time of "+topic, err)
	}
	at := func(rank int64) (IndexEntry, error) {
		m, err := s.rdb.ZRange(ctx, key, rank, rank).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return IndexEntry{}, unavailable("offset for time of "+topic, err)
		}
		if len(m) == 0 {
			return IndexEntry{}, errIndexChanged
		}
		return parseEntry(m[0])
	}
	// The first rank whose entry is at or after t, n when none is.
	lo, hi := int64(0), n
	for lo < hi {
		mid := lo + (hi-lo)/2
		e, err := at(mid)
		if errors.Is(err, errIndexChanged) {
			hi = mid // trimmed or shrunk meanwhile: search below
			continue
		}
		if err != nil {
			return 0, err
		}
		if c, ok := e.Created(); ok && !c.Before(t) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo >= n {
		return highWatermark, nil
	}
	e, err := at(lo)
	if errors.Is(err, errIndexChanged) {
		return highWatermark, nil
	}
	if err != nil {
		return 0, err
	}
	return e.BaseOffset, nil
}

var errIndexChanged = errors.New("index changed")
