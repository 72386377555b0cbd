package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// ErrSessionInvalid is returned for a heartbeat, leave or offset
	// commit whose session key is not the member's.
	ErrSessionInvalid = metadata.ErrSessionInvalid // 403 session_invalid
	// ErrGroupNotFound is returned for a group that never had a member or
	// was deleted.
	ErrGroupNotFound = metadata.ErrGroupNotFound // 404 group_not_found
	// ErrGroupNotEmpty is returned when deleting a group with live members.
	ErrGroupNotEmpty = metadata.ErrGroupNotEmpty // 409 group_not_empty
)

// groupErr is metaErr for group calls: a join past a group limit is the
// caller's to fix (400).
func groupErr(err error) error {
	if errors.Is(err, metadata.ErrGroupLimit) {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return metaErr(err)
}

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
	Committed      int64
	LogStartOffset int64
	HighWatermark  int64
	// Lag is how many records the group has yet to read: the high
	// watermark minus the larger of the committed offset and the log start
	// offset (records below the log start are gone, so never read).
	Lag int64
	// BelowLogStart is set when the committed offset is below the log
	// start offset: retention deleted records the group had not read, and
	// a member continues per the group's offset reset policy.
	BelowLogStart bool
}

// GroupDescription is a group's live members and its position in every
// partition its members subscribe to or it committed an offset for.
type GroupDescription struct {
	Group   string
	Members []metadata.Member
	Offsets []GroupOffsetLag
	// OffsetReset is the group's offset reset policy, metadata.OffsetResetEarliest
	// or metadata.OffsetResetLatest.
	OffsetReset string
}

// JoinGroupRequest is a member joining a group.
type JoinGroupRequest struct {
	Group  string
	Topics []string
	// Session is the member's session timeout; zero means
	// DefaultSessionTimeout.
	Session time.Duration
	// OffsetReset sets the group's offset reset policy ("earliest" or
	// "latest"); empty keeps the group's (earliest when never set).
	OffsetReset string
}

// JoinedGroup is the answer to a join.
type JoinedGroup struct {
	Member string
	// SessionKey is the member's secret, 32 hex digits (128 random bits):
	// its heartbeats, leave and offset commits must present it. Only the
	// member learns it; the node keeps only its SHA-256.
	SessionKey  string
	Assignments []metadata.Assignment
	// Waiting: see metadata.Synced.
	Waiting bool
	// OffsetReset is the group's policy after the join.
	OffsetReset string
}

// ListGroups returns every group that had a member and was not deleted.
func (n *Node) ListGroups(ctx context.Context) ([]string, error) {
	gs, err := n.meta.Groups(ctx)
	return gs, metaErr(err)
}

// Join adds a member to a group, sets the group's offset reset policy if
// the request names one, and returns the member's id, its partitions and
// the group's policy.
func (n *Node) Join(ctx context.Context, req JoinGroupRequest) (JoinedGroup, error) {
	if err := ValidateJoinGroup(req.Group, req.Topics, req.Session); err != nil {
		return JoinedGroup{}, err
	}
	if err := ValidateOffsetReset(req.OffsetReset); err != nil {
		return JoinedGroup{}, err
	}
	session := req.Session
	if session == 0 {
		session = DefaultSessionTimeout
	}
	var ts []metadata.Topic
	for _, name := range slices.Compact(slices.Sorted(slices.Values(req.Topics))) {
		t, err := n.meta.Topic(ctx, name)
		if err != nil {
			return JoinedGroup{}, metaErr(err)
		}
		ts = append(ts, t)
	}
	member, key := ulid.Make().String(), newSessionKey()
	j, err := n.meta.Join(ctx, metadata.GroupJoin{Group: req.Group, Member: member, SessionKey: key, Topics: ts, Session: session,
		OffsetReset: req.OffsetReset, Now: n.now()})
	if err != nil {
		return JoinedGroup{}, groupErr(err)
	}
	return JoinedGroup{Member: member, SessionKey: key, Assignments: j.Assignments, Waiting: j.Waiting, OffsetReset: j.OffsetReset}, nil
}

// sessionKeyLen is the length of a session key: 128 bits in hex.
const sessionKeyLen = 32

// newSessionKey draws a member's session key from crypto/rand (whose
// Read never fails: since Go 1.24 it crashes the program instead).
func newSessionKey() string {
	b := make([]byte, sessionKeyLen/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// maxMemberIDLen bounds a member id (the node hands out 26-character
// ULIDs).
const maxMemberIDLen = 64

// validateMember checks the member id and session key of a heartbeat,
// leave or commit: a missing one is a malformed request; a key that
// cannot be one (wrong length, not hex) is refused as ErrSessionInvalid
// without asking Redis.
func validateMember(member, key string) error {
	switch {
	case member == "":
		return invalidf("member_id: missing")
	case len(member) > maxMemberIDLen:
		return invalidf("member_id: %d bytes, at most %d", len(member), maxMemberIDLen)
	case key == "":
		return invalidf("session key: missing (send the session_key of the member's join answer in the Mamba-Session-Key header)")
	}
	if _, err := hex.DecodeString(key); err != nil || len(key) != sessionKeyLen {
		return fmt.Errorf("member %s: the session key is not %d hex digits: %w", member, sessionKeyLen, ErrSessionInvalid)
	}
	return nil
}

// DeleteGroup deletes a group with no live member, with its committed
// offsets. It fails with ErrGroupNotEmpty while a member's session runs,
// and ErrGroupNotFound for an unknown group.
func (n *Node) DeleteGroup(ctx context.Context, group string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := n.meta.DeleteGroup(ctx, group); err != nil {
		return metaErr(err)
	}
	n.metrics.groupsDeleted.Inc()
	return nil
}

// Heartbeat keeps the member alive, frees the partitions it releases
// (those the group told it to release, Assignment.Revoking, each named
// with its lease), and returns its current partitions.
func (n *Node) Heartbeat(ctx context.Context, group, member, key string, release []metadata.TopicPartitionLease) (metadata.Synced, error) {
	if err := ValidateGroupName(group); err != nil {
		return metadata.Synced{}, err
	}
	if err := validateMember(member, key); err != nil {
		return metadata.Synced{}, err
	}
	if len(release) > metadata.MaxRelease {
		return metadata.Synced{}, invalidf("release: %d partitions, at most %d", len(release), metadata.MaxRelease)
	}
	for i, r := range release {
		switch {
		case r.Topic == "":
			return metadata.Synced{}, invalidf("release[%d].topic: empty", i)
		case r.Partition < 0:
			return metadata.Synced{}, invalidf("release[%d].partition: %d is negative", i, r.Partition)
		case r.Lease <= 0:
			return metadata.Synced{}, invalidf("release[%d].lease: %d is not a lease", i, r.Lease)
		}
	}
	as, err := n.meta.Sync(ctx, metadata.GroupSync{Group: group, Member: member, SessionKey: key, Release: release, Now: n.now()})
	return as, metaErr(err)
}

// LeaveGroup removes the member, which presents its session key; its
// partitions move at once.
func (n *Node) LeaveGroup(ctx context.Context, group, member, key string) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := validateMember(member, key); err != nil {
		return err
	}
	return metaErr(n.meta.LeaveGroup(ctx, group, member, key, n.now()))
}

// CommitOffsets stores the group's offsets for member, which presents its
// session key, if the member is live and holds every partition under the
// lease named. Each offset must lie within its partition.
func (n *Node) CommitOffsets(ctx context.Context, group, member, key string, offsets []metadata.OffsetCommit) error {
	if err := ValidateGroupName(group); err != nil {
		return err
	}
	if err := validateMember(member, key); err != nil {
		return err
	}
	if len(offsets) == 0 {
		return invalidf("offsets: none given")
	}
	stats := map[string][]metadata.PartitionStats{}
	for i, o := range offsets {
		if !ValidTopicName(o.Topic) {
			return invalidf("offsets[%d].topic %q: %s", i, shorten(o.Topic), topicNameRule)
		}
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
	return metaErr(n.meta.CommitOffsets(ctx, group, member, key, offsets, n.now()))
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
	policy, err := n.meta.GroupOffsetReset(ctx, group)
	if err != nil {
		return GroupDescription{}, metaErr(err)
	}
	desc := GroupDescription{Group: group, Members: members, OffsetReset: policy}
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
			if !ok {
				c = -1
			}
			desc.Offsets = append(desc.Offsets, GroupOffsetLag{Topic: topic, Partition: ps.Partition,
				Committed: c, LogStartOffset: ps.LogStartOffset, HighWatermark: ps.HighWatermark,
				Lag:           max(ps.HighWatermark-max(c, ps.LogStartOffset), 0),
				BelowLogStart: ok && c < ps.LogStartOffset})
		}
	}
	return desc, nil
}
