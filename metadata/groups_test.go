package metadata_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

func countByMember(t *testing.T, s *metadata.Store, group string, now time.Time) map[string]int {
	t.Helper()
	members, _, err := s.DescribeGroup(t.Context(), group, now)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	seen := map[string]bool{}
	for _, m := range members {
		for _, a := range m.Assignments {
			k := fmt.Sprintf("%s/%d", a.Topic, a.Partition)
			if seen[k] {
				t.Fatalf("partition %s held by two members", k)
			}
			seen[k] = true
		}
		out[m.ID] = len(m.Assignments)
	}
	return out
}

// settle has each member heartbeat and release what it is told to, as
// the SDK does, until no partition is revoking; it returns each
// member's assignments.
func settle(t *testing.T, s *metadata.Store, group string, members []string, now time.Time) [][]metadata.Assignment {
	t.Helper()
	out := make([][]metadata.Assignment, len(members))
	for round := 0; round < 3; round++ {
		pending := false
		for i, m := range members {
			as, err := s.Heartbeat(t.Context(), group, m, keyOf(m), now)
			if err != nil {
				t.Fatal(err)
			}
			var rel []metadata.TopicPartitionLease
			for _, a := range as {
				if a.Revoking {
					rel = append(rel, metadata.TopicPartitionLease{Topic: a.Topic, Partition: a.Partition, Lease: a.Lease})
				}
			}
			if len(rel) > 0 {
				pending = true
				synced, err := s.Sync(t.Context(), metadata.GroupSync{Group: group, Member: m, SessionKey: keyOf(m), Release: rel, Now: now})
				if err != nil {
					t.Fatal(err)
				}
				as = synced.Assignments
			}
			out[i] = as
		}
		if !pending {
			return out
		}
	}
	t.Fatalf("group %s: partitions still revoking after 3 rounds", group)
	return nil
}

func TestGroupRebalanceAndFencing(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	orders := topic("orders", 12)
	mustCreate(t, s, orders)
	now := time.UnixMilli(1_000_000)
	session := 10 * time.Second
	var assigned [][]metadata.Assignment
	for _, m := range []string{"m1", "m2", "m3"} {
		as, err := s.JoinGroup(ctx, "g", m, keyOf(m), []metadata.Topic{orders}, session, now)
		if err != nil {
			t.Fatal(err)
		}
		assigned = append(assigned, as)
	}
	// m1 joined first and still holds every partition, 8 of them
	// revoking; nobody else holds any yet.
	members, _, err := s.DescribeGroup(ctx, "g", now)
	if err != nil {
		t.Fatal(err)
	}
	revokingCount := 0
	for _, a := range members[0].Assignments {
		if a.Revoking {
			revokingCount++
		}
	}
	if len(members) != 3 || len(members[0].Assignments) != 12 || revokingCount != 8 || len(members[1].Assignments)+len(members[2].Assignments) != 0 {
		t.Fatalf("before m1 released: %+v", members)
	}
	// m2 and m3 are told they wait for their share.
	for _, m := range []string{"m2", "m3"} {
		if r, err := s.Sync(ctx, metadata.GroupSync{Group: "g", Member: m, SessionKey: keyOf(m), Now: now}); err != nil || !r.Waiting {
			t.Fatalf("%s before m1 released: %+v, %v; want waiting", m, r, err)
		}
	}
	// Members learn the rebalance that later joins caused at their next
	// heartbeat: m1 releases what it must, then the others get it.
	now = now.Add(time.Second)
	for i, as := range settle(t, s, "g", []string{"m1", "m2", "m3"}, now) {
		m := []string{"m1", "m2", "m3"}[i]
		if len(as) != 4 {
			t.Fatalf("%s holds %d partitions, want 4: %+v", m, len(as), as)
		}
		assigned[i] = as
	}
	if r, err := s.Sync(ctx, metadata.GroupSync{Group: "g", Member: "m3", SessionKey: keyOf("m3"), Now: now}); err != nil || r.Waiting {
		t.Fatalf("m3 after the release: %+v, %v; want not waiting", r, err)
	}
	if got := countByMember(t, s, "g", now); fmt.Sprint(got) != "map[m1:4 m2:4 m3:4]" {
		t.Fatalf("assignment = %v", got)
	}
	// m3 commits with its lease.
	mine := assigned[2][0]
	if err := s.CommitOffsets(ctx, "g", "m3", keyOf("m3"), []metadata.OffsetCommit{{Topic: "orders", Partition: mine.Partition, Offset: 7, Lease: mine.Lease}}, now); err != nil {
		t.Fatal(err)
	}
	// m3 stops heartbeating while the others go on: after its session the
	// others take its partitions, and its late commit is refused.
	lastBeat := now
	for _, step := range []time.Duration{session / 2, session/2 + time.Millisecond} {
		now = now.Add(step)
		for _, m := range []string{"m1", "m2"} {
			if _, err := s.Heartbeat(ctx, "g", m, keyOf(m), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if now.Sub(lastBeat) <= session {
		t.Fatalf("test clock: %v since m3's last heartbeat", now.Sub(lastBeat))
	}
	as1, _ := s.Heartbeat(ctx, "g", "m1", keyOf("m1"), now)
	as2, _ := s.Heartbeat(ctx, "g", "m2", keyOf("m2"), now)
	if len(as1) != 6 || len(as2) != 6 {
		t.Fatalf("after m3 expired: m1 holds %d, m2 holds %d, want 6 each", len(as1), len(as2))
	}
	if _, err := s.Heartbeat(ctx, "g", "m3", keyOf("m3"), now); !errors.Is(err, metadata.ErrMemberNotFound) {
		t.Fatalf("heartbeat of an expired member: err = %v", err)
	}
	err = s.CommitOffsets(ctx, "g", "m3", keyOf("m3"), []metadata.OffsetCommit{{Topic: "orders", Partition: mine.Partition, Offset: 9, Lease: mine.Lease}}, now)
	if !errors.Is(err, metadata.ErrMemberNotFound) {
		t.Fatalf("zombie commit: err = %v, want ErrMemberNotFound", err)
	}
	// The new owner sees the offset m3 committed before it died, not 9.
	var moved metadata.Assignment
	for _, a := range append(as1, as2...) {
		if a.Partition == mine.Partition {
			moved = a
		}
	}
	if moved.CommittedOffset != 7 || moved.Lease <= mine.Lease {
		t.Fatalf("moved partition = %+v, want committed offset 7 and a lease above %d", moved, mine.Lease)
	}
	// A commit naming one stale lease stores nothing, even for the others.
	err = s.CommitOffsets(ctx, "g", "m1", keyOf("m1"), []metadata.OffsetCommit{
		{Topic: "orders", Partition: as1[0].Partition, Offset: 3, Lease: as1[0].Lease},
		{Topic: "orders", Partition: mine.Partition, Offset: 9, Lease: mine.Lease},
	}, now)
	if !errors.Is(err, metadata.ErrLeaseLost) {
		t.Fatalf("mixed commit: err = %v", err)
	}
	_, offsets, _ := s.DescribeGroup(ctx, "g", now)
	for _, o := range offsets {
		if o.Partition == as1[0].Partition && o.Offset == 3 {
			t.Fatal("a commit refused for one lease stored another partition's offset")
		}
	}
	// Leaving hands partitions over at once.
	if err := s.LeaveGroup(ctx, "g", "m2", keyOf("m2"), now); err != nil {
		t.Fatal(err)
	}
	if as, _ := s.Heartbeat(ctx, "g", "m1", keyOf("m1"), now); len(as) != 12 {
		t.Fatalf("after m2 left m1 holds %d, want 12", len(as))
	}
	if groups, err := s.Groups(ctx); err != nil || fmt.Sprint(groups) != "[g]" {
		t.Fatalf("Groups = %v, %v", groups, err)
	}
}

func TestGroupUnevenShares(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	a, b := topic("a", 5), topic("b", 2)
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	now := time.UnixMilli(5_000)
	if _, err := s.JoinGroup(ctx, "g", "x", keyOf("x"), []metadata.Topic{a, b}, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JoinGroup(ctx, "g", "y", keyOf("y"), []metadata.Topic{a}, time.Minute, now); err != nil {
		t.Fatal(err)
	}
	settle(t, s, "g", []string{"x", "y"}, now)
	members, _, err := s.DescribeGroup(ctx, "g", now)
	if err != nil {
		t.Fatal(err)
	}
	perTopic := map[string]map[string]int{}
	for _, m := range members {
		for _, as := range m.Assignments {
			if perTopic[m.ID] == nil {
				perTopic[m.ID] = map[string]int{}
			}
			perTopic[m.ID][as.Topic]++
		}
	}
	// Topic a splits 3/2 between both; topic b goes to x, its only subscriber.
	if perTopic["x"]["b"] != 2 || perTopic["y"]["b"] != 0 || perTopic["x"]["a"]+perTopic["y"]["a"] != 5 ||
		perTopic["x"]["a"] < 2 || perTopic["y"]["a"] < 2 {
		t.Fatalf("shares = %v", perTopic)
	}
}
