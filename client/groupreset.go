package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Where ResetGroupOffsets moves a group's offsets (ResetSpec.To).
const (
	// ResetToEarliest moves to each partition's log start offset.
	ResetToEarliest = "earliest"
	// ResetToLatest moves to each partition's high watermark.
	ResetToLatest = "latest"
	// ResetToTimestamp moves to the first record appended at or after
	// ResetSpec.Timestamp.
	ResetToTimestamp = "timestamp"
	// ResetToOffsets moves to ResetSpec.Offsets.
	ResetToOffsets = "offsets"
)

// ResetSpec says how to reset a group's committed offsets in one topic.
type ResetSpec struct {
	Topic string
	// To is ResetToEarliest, ResetToLatest, ResetToTimestamp or
	// ResetToOffsets.
	To string
	// Timestamp, for ResetToTimestamp, is compared with the records'
	// append times (when the node stored them, to the millisecond), not
	// the producers' record timestamps.
	Timestamp time.Time
	// Offsets, for ResetToOffsets, are the new offsets by partition; an
	// offset outside the partition's log start offset..high watermark is
	// clamped into it (PartitionReset.Clamped).
	Offsets map[int32]int64
	// Partitions limits ResetToEarliest, ResetToLatest and
	// ResetToTimestamp to these partitions; empty means all.
	Partitions []int32
	// Force resets while the group has live members: each reset
	// partition's owner gets a new lease, so its commits of its old
	// position fail with ErrLeaseLost and it reads again from the reset
	// offset. Without Force, a group with live members is refused with
	// ErrGroupNotEmpty.
	Force bool
	// DryRun returns the plan without changing anything.
	DryRun bool
}

// ResetPlan is what a reset does (DryRun) or did. Its JSON form is the
// API's answer.
type ResetPlan struct {
	Group  string `json:"group"`
	Topic  string `json:"topic"`
	DryRun bool   `json:"dry_run"`
	// LiveMembers is the number of members whose session runs.
	LiveMembers int              `json:"live_members"`
	Partitions  []PartitionReset `json:"partitions"`
}

// PartitionReset is one partition of a ResetPlan.
type PartitionReset struct {
	Partition int32 `json:"partition"`
	// CurrentOffset is the committed offset before the reset, -1 for
	// none; NewOffset the one after.
	CurrentOffset int64 `json:"current_offset"`
	NewOffset     int64 `json:"new_offset"`
	// Clamped is set when the offset asked for lay outside
	// LogStartOffset..HighWatermark and NewOffset is the nearest end.
	Clamped        bool  `json:"clamped"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
}

// ResetGroupOffsets resets the group's committed offsets in one topic, as
// spec says, and returns the plan; with spec.DryRun it only returns the
// plan. Members of the group read from the new offsets when they next
// get the partitions (after a forced reset, at once). It fails with
// ErrGroupNotEmpty while the group has live members unless spec.Force,
// ErrTopicNotFound for an unknown topic, and ErrInvalidRequest for a
// malformed spec.
func (c *Client) ResetGroupOffsets(ctx context.Context, group string, spec ResetSpec) (ResetPlan, error) {
	if err := validateName("group", group); err != nil {
		return ResetPlan{}, fmt.Errorf("reset offsets: %w", err)
	}
	in := struct {
		Topic       string           `json:"topic"`
		To          string           `json:"to"`
		TimestampMS *int64           `json:"timestamp_ms,omitempty"`
		Offsets     map[string]int64 `json:"offsets,omitempty"`
		Partitions  []int32          `json:"partitions,omitempty"`
		Force       bool             `json:"force"`
		DryRun      bool             `json:"dry_run"`
	}{Topic: spec.Topic, To: spec.To, Partitions: spec.Partitions, Force: spec.Force, DryRun: spec.DryRun}
	if !spec.Timestamp.IsZero() {
		ms := spec.Timestamp.UnixMilli()
		in.TimestampMS = &ms
	}
	if spec.Offsets != nil {
		in.Offsets = make(map[string]int64, len(spec.Offsets))
		for p, off := range spec.Offsets {
			in.Offsets[strconv.Itoa(int(p))] = off
		}
	}
	var plan ResetPlan
	// A reset sets absolute offsets, so a retry after a lost answer does
	// the same again.
	if _, err := c.sendJSON(ctx, http.MethodPost, apiPath("v1", "groups", group, "offsets", "reset"), true, in, &plan); err != nil {
		return ResetPlan{}, fmt.Errorf("reset offsets of group %s: %w", group, err)
	}
	return plan, nil
}
