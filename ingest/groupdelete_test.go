package ingest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mambamq/mamba/metadata"
)

// TestDescribeGroupBelowLogStart commits an offset, lets retention trim
// past it (metadata.Trim, as the retention job does) and checks that
// describe reports the log start, flags the partition and counts the lag
// from the log start.
func TestDescribeGroupBelowLogStart(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{NodeID: "below"}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	// Three produce requests: three index entries of 2 records each.
	for range 3 {
		if _, err := n.Produce(ctx, "orders", []ProduceRecord{{Value: []byte("a")}, {Value: []byte("b")}}, ProduceOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	j, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, OffsetReset: "latest"})
	if err != nil {
		t.Fatal(err)
	}
	if j.OffsetReset != metadata.OffsetResetLatest || len(j.Assignments) != 1 {
		t.Fatalf("join = %+v, want the latest policy and one partition", j)
	}
	a := j.Assignments[0]
	if err := n.CommitOffsets(ctx, "billing", j.Member, j.SessionKey, []metadata.OffsetCommit{{Topic: "orders", Partition: 0, Offset: 1, Lease: a.Lease}}); err != nil {
		t.Fatal(err)
	}
	check := func(wantStart, wantLag int64, wantBelow bool) {
		t.Helper()
		d, err := n.DescribeGroup(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if d.OffsetReset != metadata.OffsetResetLatest || len(d.Offsets) != 1 {
			t.Fatalf("describe = %+v", d)
		}
		o := d.Offsets[0]
		if o.Committed != 1 || o.LogStartOffset != wantStart || o.HighWatermark != 6 || o.Lag != wantLag || o.BelowLogStart != wantBelow {
			t.Fatalf("offset = %+v, want committed 1, log start %d, high watermark 6, lag %d, below %v", o, wantStart, wantLag, wantBelow)
		}
	}
	check(0, 5, false)
	topic, err := c.meta.Topic(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := c.meta.Head(ctx, "orders", 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if start, ok, err := c.meta.Trim(ctx, topic, 0, head); err != nil || !ok || start != 4 {
		t.Fatalf("trim = %d, %v, %v; want log start 4", start, ok, err)
	}
	check(4, 2, true)
	if _, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, OffsetReset: "oldest"}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("join with offset_reset oldest: err = %v", err)
	}
}

// TestDeleteGroupThroughNode deletes a group: refused while a member is
// live, done once it left, then the group is gone.
func TestDeleteGroupThroughNode(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{NodeID: "delete"}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	j, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, Session: 5 * time.Second})
	as := j.Assignments
	if err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteGroup(ctx, "billing"); !errors.Is(err, ErrGroupNotEmpty) {
		t.Fatalf("delete with a live member: err = %v", err)
	}
	if err := n.CommitOffsets(ctx, "billing", j.Member, j.SessionKey, []metadata.OffsetCommit{{Topic: "orders", Partition: as[0].Partition, Offset: 0, Lease: as[0].Lease}}); err != nil {
		t.Fatal(err)
	}
	if err := n.LeaveGroup(ctx, "billing", j.Member, j.SessionKey); err != nil {
		t.Fatal(err)
	}
	if err := n.DeleteGroup(ctx, "billing"); err != nil {
		t.Fatalf("delete after the member left: %v", err)
	}
	if got := testutil.ToFloat64(n.metrics.groupsDeleted); got != 1 {
		t.Fatalf("mamba_groups_deleted_total = %v, want 1", got)
	}
	if _, err := n.DescribeGroup(ctx, "billing"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("describe after delete: err = %v", err)
	}
	if gs, err := n.ListGroups(ctx); err != nil || slices.Contains(gs, "billing") {
		t.Fatalf("list after delete = %v, %v", gs, err)
	}
	if err := n.DeleteGroup(ctx, "billing"); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("second delete: err = %v", err)
	}
	if err := n.DeleteGroup(ctx, "a/b"); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("delete a bad name: err = %v", err)
	}
}

// TestDeleteGroupJudgesLivenessByRedisClock deletes a group through a
// node whose clock runs an hour ahead: the member's session is judged by
// Redis's clock, so the group with a live member is kept.
func TestDeleteGroupJudgesLivenessByRedisClock(t *testing.T) {
	c := newCluster(t)
	n := c.node(Config{NodeID: "live"}, nil)
	ctx := t.Context()
	if _, err := n.CreateTopic(ctx, TopicConfig{Name: "orders", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Join(ctx, JoinGroupRequest{Group: "billing", Topics: []string{"orders"}, Session: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Not run: DeleteGroup needs no pipeline, and the clock is set before
	// anything reads it.
	ahead, err := New(Config{NodeID: "ahead"}, c.meta, c.store, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ahead.now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := ahead.DeleteGroup(ctx, "billing"); !errors.Is(err, ErrGroupNotEmpty) {
		t.Fatalf("delete through a node an hour ahead: err = %v, want ErrGroupNotEmpty", err)
	}
	if gs, err := n.ListGroups(ctx); err != nil || !slices.Contains(gs, "billing") {
		t.Fatalf("groups = %v, %v; want billing kept", gs, err)
	}
}
