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

// Deleting and expiring consumer groups (scripts/delete_group.lua), and
// removing the committed offsets of topics that no longer exist
// (scripts/forget_offsets.lua). The group janitor (package tiering) drives
// the last two; DELETE /v1/groups/{group} the first.

var (
	// ErrGroupNotFound is returned for a group none of whose keys exists:
	// it never had a member, or it was deleted.
	ErrGroupNotFound = errors.New("group not found")
	// ErrGroupNotEmpty is returned when deleting a group that has a live
	// member (one whose session has not expired).
	ErrGroupNotEmpty = errors.New("group not empty")
)

// MaxForgetOffsets bounds the offsets one ForgetGroupOffsets call removes.
const MaxForgetOffsets = 1000

// DeleteGroup deletes a group that has no live member: its members,
// partitions, committed offsets, lease counter and activity, and its name
// in the groups set. It fails with ErrGroupNotEmpty while a member's
// session runs, and with ErrGroupNotFound for an unknown group. Whether a
// session runs is judged by Redis's clock (TIME in the script), not the
// caller's.
func (s *Store) DeleteGroup(ctx context.Context, group string) error {
	_, err := s.deleteGroup(ctx, group, "")
	return err
}

// ExpireGroup deletes the group, as DeleteGroup does, if it has no live
// member and its last activity (join, heartbeat, leave or offset commit)
// is at least retention before Redis's clock. It reports whether it
// deleted the group; a group with live members, recent activity, or none
// recorded yet (its activity is then set to Redis's time) is kept, and so
// is an unknown one.
func (s *Store) ExpireGroup(ctx context.Context, group string, retention time.Duration) (bool, error) {
	if retention <= 0 {
		return false, fmt.Errorf("expire group %s: retention %v is not positive", group, retention)
	}
	deleted, err := s.deleteGroup(ctx, group, strconv.FormatInt(retention.Milliseconds(), 10))
	if errors.Is(err, ErrGroupNotEmpty) || errors.Is(err, ErrGroupNotFound) {
		return false, nil
	}
	return deleted, err
}

func (s *Store) deleteGroup(ctx context.Context, group, retention string) (bool, error) {
	res, err := deleteGroupScript.Run(ctx, s.rdb, s.groupKeys(group), retention).Text()
	if err != nil {
		switch msg := err.Error(); {
		case strings.Contains(msg, "GROUP_NOT_FOUND"):
			// A name left in the set by an interrupted delete goes now,
			// unless a join has created the group again meanwhile.
			if err := s.forgetGroupName(ctx, group); err != nil {
				return false, err
			}
			return false, fmt.Errorf("group %s: %w", group, ErrGroupNotFound)
		case strings.Contains(msg, "GROUP_NOT_EMPTY"):
			return false, fmt.Errorf("group %s has live members: %w", group, ErrGroupNotEmpty)
		}
		return false, unavailable("delete group "+group, err)
	}
	if res != "DELETED" {
		return false, nil
	}
	return true, s.forgetGroupName(ctx, group)
}

// forgetGroupName removes a deleted group from the groups set. The set has
// no hash tag, so this cannot be part of the script: a join that recreated
// the group between the script and SREM has already added the name, and
// SREM would drop it; so the name is added back when the group's keys
// exist again afterwards (a join adds its name after its script, so one
// of the two SADDs comes last).
func (s *Store) forgetGroupName(ctx context.Context, group string) error {
	if err := s.rdb.SRem(ctx, s.groupsKey(), group).Err(); err != nil {
		return unavailable("delete group "+group, err)
	}
	n, err := s.rdb.Exists(ctx, s.groupKey(group, "meta"), s.groupKey(group, "lease")).Result()
	if err != nil {
		return unavailable("delete group "+group, err)
	}
	if n > 0 {
		if err := s.rdb.SAdd(ctx, s.groupsKey(), group).Err(); err != nil {
			return unavailable("delete group "+group, err)
		}
	}
	return nil
}

// ScanGroups returns a page of about count group names from the groups
// set and the cursor of the next page, 0 after the last (SSCAN: a name
// present for the whole scan is returned at least once).
func (s *Store) ScanGroups(ctx context.Context, cursor uint64, count int64) ([]string, uint64, error) {
	names, next, err := s.rdb.SScan(ctx, s.groupsKey(), cursor, "", count).Result()
	if err != nil {
		return nil, 0, unavailable("scan groups", err)
	}
	return names, next, nil
}

// ScanGroupOffsets returns a page of about count of the group's committed
// offsets and the cursor of the next page, 0 after the last.
func (s *Store) ScanGroupOffsets(ctx context.Context, group string, cursor uint64, count int64) ([]GroupOffset, uint64, error) {
	kv, next, err := s.rdb.HScan(ctx, s.groupKey(group, "offsets"), cursor, "", count).Result()
	if err != nil {
		return nil, 0, unavailable("scan offsets of group "+group, err)
	}
	out := make([]GroupOffset, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		topic, p, err := splitTopicPartition(kv[i])
		if err != nil {
			return nil, 0, fmt.Errorf("group %s: %w", group, err)
		}
		off, err := strconv.ParseInt(kv[i+1], 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("group %s: malformed offset %q for %s", group, kv[i+1], kv[i])
		}
		out = append(out, GroupOffset{Topic: topic, Partition: p, Offset: off})
	}
	return out, next, nil
}

// ForgetGroupOffsets removes the group's committed offsets given, each
// only if it still holds the offset given (one committed since is kept),
// and returns how many it removed. At most MaxForgetOffsets at a time.
func (s *Store) ForgetGroupOffsets(ctx context.Context, group string, offsets []GroupOffset) (int, error) {
	if len(offsets) > MaxForgetOffsets {
		return 0, fmt.Errorf("forget offsets of group %s: %d offsets, at most %d at a time", group, len(offsets), MaxForgetOffsets)
	}
	if len(offsets) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 2*len(offsets))
	for _, o := range offsets {
		args = append(args, o.Topic+"/"+strconv.Itoa(int(o.Partition)), o.Offset)
	}
	n, err := forgetOffsetsScript.Run(ctx, s.rdb, []string{s.groupKey(group, "offsets")}, args...).Int()
	if err != nil {
		return 0, unavailable("forget offsets of group "+group, err)
	}
	return n, nil
}

// GroupOffsetReset returns the group's offset reset policy: "earliest"
// unless a join set it.
func (s *Store) GroupOffsetReset(ctx context.Context, group string) (string, error) {
	v, err := s.rdb.HGet(ctx, s.groupKey(group, "meta"), "offset_reset").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", unavailable("get offset reset of group "+group, err)
	}
	if v == "" {
		v = OffsetResetEarliest
	}
	return v, nil
}
