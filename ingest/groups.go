package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/mambamq/mamba/metadata"
)

// Consumer group errors.
var (
	ErrMemberNotFound = metadata.ErrMemberNotFound // 404 member_not_found
	ErrLeaseLost      = metadata.ErrLeaseLost      // 409 lease_lost
)

// DefaultSessionTimeout is a group member's session when it names none.
const DefaultSessionTimeout = 10 * time.Second

// maxGroupTopics bounds the topics one member subscribes to.
const maxGroupTopics = 100

// GroupOffsetLag is a group's position in one partition.
type GroupOffsetLag struct {
	Topic     string
	Partition int32
	// Committed is the next offset the group reads, or -1 if it never
	// committed one.
	Committed     int64
	HighWatermark int64
	// Lag is how many records the group has yet to read: the high
	// watermark minus the committed offset (or minus the log start offset
	// when nothing was committed).
	Lag int64
}

// GroupDescription is a group's live members and its position in every
// partition its members subscribe to or it committed an offset for.
type GroupDescription struct {
	Group   string
	Members []metadata.Member
	Offsets []GroupOffsetLag
}

// ListGroups returns every group that ever had a member.
func (n *Node) ListGroups(ctx context.Context) ([]string, error) {
	gs, err := n.meta.Groups(ctx)
	return gs, metaErr(err)
}

// JoinGroup adds a member subscribed to topics and returns its id and its
// partitions.
func (n *Node) JoinGroup(ctx context.Context, group string, topics []string, session time.Duration) (string, []metadata.Assignment, error) {
	if err := ValidateJoinGroup(group, topics, session); err != nil {
		return "", nil, err
	}
	if session == 0 {
		session = DefaultSessionTimeout
	}
	var ts []metadata.Topic
	for _, name := range slices.Compact(slices.Sorted(slices.Values(topics))) {
		t, err := n.meta.Topic(ctx, name)
		if err != nil {
			return "", nil, metaErr(err)
		}
		ts = append(ts, t)
	}
	member := ulid.Make().String()
	as, err := n.meta.JoinGroup(ctx, group, member, ts, session, n.now())
	if err != nil {
		return "", nil, metaErr(err)
	}
	return member, as, nil
}

// Heartbeat keeps the member alive and returns its current partitions.
func (n *Node) Heartbeat(ctx context.Context, group, member string) ([]metadata.Assignment, error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, err
	}
	as, err := n.meta.Heartbeat(ctx, group, member, n.now())
	return as, metaErr(err)
}

// LeaveGroup removes the member; its partitions move at once.
func (n *Node) LeaveGroup(ctx context.Context, group, member string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	return metaErr(n.meta.LeaveGroup(ctx, group, member, n.now()))
}

// CommitOffsets stores the group's offsets if every lease is current.
// Each offset must lie within its partition.
func (n *Node) CommitOffsets(ctx context.Context, group string, offsets []metadata.OffsetCommit) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if len(offsets) == 0 {
		return invalidf("offsets: none given")
	}
	stats := map[string][]metadata.PartitionStats{}
	for i, o := range offsets {
		st, ok := stats[o.Topic]
		if !ok {
			_, s, err := n.meta.PartitionStats(ctx, o.Topic)
			if err != nil {
				return metaErr(err)
			}
			st, stats[o.Topic] = s, s
		}
		switch {
		case o.Partition < 0 || int(o.Partition) >= len(st):
			return invalidf("offsets[%d]: topic %s has no partition %d", i, o.Topic, o.Partition)
		case o.Offset < 0 || o.Offset > st[o.Partition].HighWatermark:
			return invalidf("offsets[%d]: offset %d is outside 0..%d (the high watermark of %s/%d)",
				i, o.Offset, st[o.Partition].HighWatermark, o.Topic, o.Partition)
		case o.Lease <= 0:
			return invalidf("offsets[%d]: lease %d is not a lease", i, o.Lease)
		}
	}
	return metaErr(n.meta.CommitOffsets(ctx, group, offsets, n.now()))
}

// DescribeGroup returns the group's members and its lag in every partition
// of the topics its members subscribe to.
func (n *Node) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	if err := ValidateGroupName(group); err != nil {
		return GroupDescription{}, err
	}
	members, offsets, err := n.meta.DescribeGroup(ctx, group, n.now())
	if err != nil {
		return GroupDescription{}, metaErr(err)
	}
	committed := map[string]map[int32]int64{}
	var topics []string
	for _, o := range offsets {
		if committed[o.Topic] == nil {
			committed[o.Topic] = map[int32]int64{}
			topics = append(topics, o.Topic)
		}
		committed[o.Topic][o.Partition] = o.Offset
	}
	for _, m := range members {
		topics = append(topics, m.Topics...)
	}
	if len(members) == 0 && len(offsets) == 0 {
		known, err := n.meta.Groups(ctx)
		if err != nil {
			return GroupDescription{}, metaErr(err)
		}
		if !slices.Contains(known, group) {
			return GroupDescription{}, fmt.Errorf("group %s: %w", group, ErrGroupNotFound)
		}
	}
	desc := GroupDescription{Group: group, Members: members}
	for _, topic := range slices.Compact(slices.Sorted(slices.Values(topics))) {
		_, stats, err := n.meta.PartitionStats(ctx, topic)
		if errors.Is(err, metadata.ErrTopicNotFound) {
			continue // deleted since
		}
		if err != nil {
			return GroupDescription{}, metaErr(err)
		}
		for _, ps := range stats {
			c, ok := committed[topic][ps.Partition]
			lag := ps.HighWatermark - ps.LogStartOffset
			if !ok {
				c = -1
			} else {
				lag = max(ps.HighWatermark-c, 0)
			}
			desc.Offsets = append(desc.Offsets, GroupOffsetLag{Topic: topic, Partition: ps.Partition,
				Committed: c, HighWatermark: ps.HighWatermark, Lag: lag})
		}
	}
	return desc, nil
}

// ErrGroupNotFound is returned for a group that never had a member.
var ErrGroupNotFound = errors.New("group not found") // 404 group_not_found
