package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// Where a group's offsets are reset to (ResetOffsetsRequest.To).
const (
	ResetToEarliest  = "earliest"
	ResetToLatest    = "latest"
	ResetToTimestamp = "timestamp"
	ResetToOffsets   = "offsets"
)

// ResetOffsetsRequest resets a group's committed offsets in one topic.
type ResetOffsetsRequest struct {
	Group, Topic string
	// To is ResetToEarliest (each partition's log start offset),
	// ResetToLatest (its high watermark), ResetToTimestamp (the first
	// record appended at or after Timestamp) or ResetToOffsets (Offsets).
	To        string
	Timestamp time.Time
	// Offsets are the new offsets by partition, for ResetToOffsets; an
	// offset outside the partition's log start offset..high watermark is
	// clamped into it.
	Offsets map[int32]int64
	// Partitions limits earliest, latest and timestamp to these
	// partitions; empty means all. Not allowed with ResetToOffsets, whose
	// offsets name the partitions.
	Partitions []int32
	// Force resets while the group has live members, fencing them.
	Force bool
	// DryRun answers the plan and changes nothing.
	DryRun bool
}

// PartitionReset is one partition of a reset plan.
type PartitionReset struct {
	Partition int32
	// Current is the group's committed offset before the reset, -1 for
	// none.
	Current int64
	New     int64
	// Clamped is set when the offset asked for lay outside
	// LogStartOffset..HighWatermark and New is the nearest end.
	Clamped        bool
	LogStartOffset int64
	HighWatermark  int64
}

// ResetPlan is what a reset does, or did.
type ResetPlan struct {
	Group, Topic string
	DryRun       bool
	// LiveMembers is the number of members whose session runs.
	LiveMembers int
	Partitions  []PartitionReset
}

// ResetGroupOffsets plans a reset of the group's committed offsets in one
// topic and, unless req.DryRun, applies it in one atomic step. It fails
// with ErrGroupNotEmpty while the group has live members unless
// req.Force, with ErrTopicNotFound for an unknown topic, and with
// ErrInvalidRequest for a malformed request (the message names the
// field).
func (n *Node) ResetGroupOffsets(ctx context.Context, req ResetOffsetsRequest) (ResetPlan, error) {
	if err := ValidateGroupName(req.Group); err != nil {
		return ResetPlan{}, err
	}
	if req.Topic == "" {
		return ResetPlan{}, invalidf("topic: missing")
	}
	if !ValidTopicName(req.Topic) {
		return ResetPlan{}, invalidf("topic %q: %s", shorten(req.Topic), topicNameRule)
	}
	switch req.To {
	case ResetToEarliest, ResetToLatest:
		if req.Offsets != nil || !req.Timestamp.IsZero() {
			return ResetPlan{}, invalidf("to: %q takes neither offsets nor timestamp_ms", req.To)
		}
	case ResetToTimestamp:
		if req.Timestamp.IsZero() {
			return ResetPlan{}, invalidf("timestamp_ms: missing for to %q", req.To)
		}
		if req.Offsets != nil {
			return ResetPlan{}, invalidf("offsets: not allowed with to %q", req.To)
		}
	case ResetToOffsets:
		if len(req.Offsets) == 0 {
			return ResetPlan{}, invalidf("offsets: missing for to %q", req.To)
		}
		if len(req.Partitions) > 0 {
			return ResetPlan{}, invalidf("partitions: not allowed with to %q; the offsets name the partitions", req.To)
		}
		if !req.Timestamp.IsZero() {
			return ResetPlan{}, invalidf("timestamp_ms: not allowed with to %q", req.To)
		}
	case "":
		return ResetPlan{}, invalidf("to: missing; want %q, %q, %q or %q", ResetToEarliest, ResetToLatest, ResetToTimestamp, ResetToOffsets)
	default:
		return ResetPlan{}, invalidf("to: %q is none of %q, %q, %q, %q", req.To, ResetToEarliest, ResetToLatest, ResetToTimestamp, ResetToOffsets)
	}
	_, stats, err := n.meta.PartitionStats(ctx, req.Topic)
	if err != nil {
		return ResetPlan{}, metaErr(err)
	}
	parts := req.Partitions
	if req.To == ResetToOffsets {
		parts = parts[:0:0]
		for p, off := range req.Offsets {
			if p < 0 || int(p) >= len(stats) {
				return ResetPlan{}, invalidf("offsets: topic %s has no partition %d", req.Topic, p)
			}
			if off < 0 {
				return ResetPlan{}, invalidf("offsets: offset %d of partition %d is negative", off, p)
			}
			parts = append(parts, p)
		}
	} else if len(parts) == 0 {
		for p := range stats {
			parts = append(parts, int32(p))
		}
	}
	parts = slices.Clone(parts)
	slices.Sort(parts)
	for i, p := range parts {
		if p < 0 || int(p) >= len(stats) {
			return ResetPlan{}, invalidf("partitions[%d]: topic %s has no partition %d", i, req.Topic, p)
		}
		if i > 0 && parts[i-1] == p {
			return ResetPlan{}, invalidf("partitions: %d named twice", p)
		}
	}
	if len(parts) > metadata.MaxResetOffsets {
		return ResetPlan{}, invalidf("partitions: %d, at most %d", len(parts), metadata.MaxResetOffsets)
	}
	members, offsets, err := n.meta.DescribeGroup(ctx, req.Group, n.now())
	if err != nil {
		return ResetPlan{}, metaErr(err)
	}
	current := map[int32]int64{}
	for _, o := range offsets {
		if o.Topic == req.Topic {
			current[o.Partition] = o.Offset
		}
	}
	plan := ResetPlan{Group: req.Group, Topic: req.Topic, DryRun: req.DryRun, LiveMembers: len(members)}
	var set []metadata.GroupOffset
	for _, p := range parts {
		st := stats[p]
		pr := PartitionReset{Partition: p, Current: -1, LogStartOffset: st.LogStartOffset, HighWatermark: st.HighWatermark}
		if c, ok := current[p]; ok {
			pr.Current = c
		}
		var want int64
		switch req.To {
		case ResetToEarliest:
			want = st.LogStartOffset
		case ResetToLatest:
			want = st.HighWatermark
		case ResetToTimestamp:
			if want, err = n.meta.OffsetForTime(ctx, req.Topic, p, req.Timestamp, st.HighWatermark); err != nil {
				return ResetPlan{}, metaErr(err)
			}
		case ResetToOffsets:
			want = req.Offsets[p]
		}
		pr.New = min(max(want, st.LogStartOffset), st.HighWatermark)
		pr.Clamped = req.To == ResetToOffsets && pr.New != want
		plan.Partitions = append(plan.Partitions, pr)
		set = append(set, metadata.GroupOffset{Topic: req.Topic, Partition: p, Offset: pr.New})
	}
	if req.DryRun {
		return plan, nil
	}
	if !req.Force && len(members) > 0 {
		return plan, fmt.Errorf("reset offsets of group %s: %d live members; stop them or force: %w", req.Group, len(members), ErrGroupNotEmpty)
	}
	live, err := n.meta.ResetGroupOffsets(ctx, req.Group, set, req.Force)
	if err != nil {
		return plan, groupErr(err)
	}
	plan.LiveMembers = live
	return plan, nil
}
