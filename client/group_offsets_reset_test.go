package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mambamq/mamba/client"
)

func planString(p client.ResetPlan) string {
	s := fmt.Sprintf("dry=%v live=%d", p.DryRun, p.LiveMembers)
	for _, pr := range p.Partitions {
		s += fmt.Sprintf(" %d:%d->%d", pr.Partition, pr.CurrentOffset, pr.NewOffset)
		if pr.Clamped {
			s += "!"
		}
	}
	return s
}

// ResetGroupOffsets: refused while a member is live, a dry run that
// changes nothing, a forced reset the live member follows at once (it
// reads the partitions again from the new offsets), and explicit offsets
// clamped into the partitions.
func TestResetGroupOffsets(t *testing.T) {
	c, topic, p := startWithTopic(t, 2)
	ctx := t.Context()
	produceValues(t, p, topic, 0, 0, 10)
	produceValues(t, p, topic, 1, 0, 10)

	g := newGroupConsumer(t, c, "rewind", []string{topic}, client.WithHeartbeatInterval(100*time.Millisecond), client.WithMaxWait(100*time.Millisecond))
	fetchUntil(t, g, func(got []client.ConsumedRecord) bool { return len(got) == 20 })
	if err := g.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	earliest := client.ResetSpec{Topic: topic, To: client.ResetToEarliest}
	if _, err := c.ResetGroupOffsets(ctx, "rewind", earliest); !errors.Is(err, client.ErrGroupNotEmpty) {
		t.Fatalf("reset with a live member: %v, want ErrGroupNotEmpty", err)
	}
	dry := earliest
	dry.DryRun = true
	plan, err := c.ResetGroupOffsets(ctx, "rewind", dry)
	if err != nil || planString(plan) != "dry=true live=1 0:10->0 1:10->0" {
		t.Fatalf("dry run: %s, %v", planString(plan), err)
	}
	if d, err := c.DescribeGroup(ctx, "rewind"); err != nil || d.Offsets[0].CommittedOffset != 10 || d.Offsets[1].CommittedOffset != 10 {
		t.Fatalf("after a dry run: %+v, %v", d.Offsets, err)
	}

	// Forced: the member learns of the new leases and reads everything
	// again; its commits go on working under the new leases.
	force := earliest
	force.Force = true
	plan, err = c.ResetGroupOffsets(ctx, "rewind", force)
	if err != nil || planString(plan) != "dry=false live=1 0:10->0 1:10->0" {
		t.Fatalf("forced reset: %s, %v", planString(plan), err)
	}
	again := fetchUntil(t, g, func(got []client.ConsumedRecord) bool { return len(got) >= 20 })
	for _, r := range again[:20] {
		if r.Offset >= 10 {
			t.Fatalf("after the forced reset the member read offset %d of partition %d", r.Offset, r.Partition)
		}
	}
	if err := g.Commit(ctx); err != nil {
		t.Fatalf("commit after the forced reset: %v", err)
	}
	if err := g.Close(ctx); err != nil {
		t.Fatal(err)
	}

	plan, err = c.ResetGroupOffsets(ctx, "rewind", client.ResetSpec{Topic: topic, To: client.ResetToOffsets, Offsets: map[int32]int64{0: 3, 1: 99}})
	if err != nil || planString(plan) != "dry=false live=0 0:10->3 1:10->10!" {
		t.Fatalf("reset to offsets: %s, %v", planString(plan), err)
	}
	plan, err = c.ResetGroupOffsets(ctx, "rewind", client.ResetSpec{Topic: topic, To: client.ResetToTimestamp, Timestamp: time.Now().Add(time.Hour), Partitions: []int32{0}})
	if err != nil || planString(plan) != "dry=false live=0 0:3->10" {
		t.Fatalf("reset to a time after every record: %s, %v", planString(plan), err)
	}
	if _, err := c.ResetGroupOffsets(ctx, "rewind", client.ResetSpec{Topic: topic, To: client.ResetToTimestamp}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("reset to a timestamp without one: %v, want ErrInvalidRequest", err)
	}
	if _, err := c.ResetGroupOffsets(ctx, "rewind", client.ResetSpec{Topic: "nope", To: client.ResetToLatest}); !errors.Is(err, client.ErrTopicNotFound) {
		t.Fatalf("reset of an unknown topic: %v, want ErrTopicNotFound", err)
	}
}
