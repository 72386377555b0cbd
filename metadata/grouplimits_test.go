package metadata_test

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/internal/tooling/testserver"
	"github.com/mambamq/mamba/metadata"
)

// TestGroupLimits joins past each group limit, set low: the join is
// refused with ErrGroupLimit and changes nothing, a member joining again
// is not counted twice, and room made by a leave is usable again.
func TestGroupLimits(t *testing.T) {
	r := testserver.StartRedis(t, testserver.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	s := metadata.New(rdb, metadata.Options{GroupLimits: metadata.GroupLimits{Members: 2, Partitions: 10, Groups: 2}})
	ctx := t.Context()
	if err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	small, big, other := topic("small", 4), topic("big", 7), topic("other", 6)
	for _, tp := range []metadata.Topic{small, big, other} {
		mustCreate(t, s, tp)
	}
	now := time.UnixMilli(5_000)
	join := func(group, member string, ts ...metadata.Topic) error {
		_, err := s.JoinGroup(ctx, group, member, keyOf(member), ts, time.Minute, now)
		return err
	}

	// Members.
	for _, m := range []string{"a", "b", "a"} { // a joins again: still 2
		if err := join("g", m, small); err != nil {
			t.Fatalf("join %s: %v", m, err)
		}
	}
	if err := join("g", "c", small); !errors.Is(err, metadata.ErrGroupLimit) {
		t.Fatalf("third member: %v, want ErrGroupLimit", err)
	}
	members, _, err := s.DescribeGroup(ctx, "g", now)
	if err != nil || len(members) != 2 {
		t.Fatalf("after the refused join: %d members, %v; want 2", len(members), err)
	}
	if err := s.LeaveGroup(ctx, "g", "b", keyOf("b"), now); err != nil {
		t.Fatal(err)
	}
	if err := join("g", "c", small); err != nil {
		t.Fatalf("join after a leave: %v", err)
	}

	// Partitions: small (4) + big (7) > 10, small + other (6) = 10.
	if err := join("h", "a", small, big); !errors.Is(err, metadata.ErrGroupLimit) {
		t.Fatalf("11 partitions: %v, want ErrGroupLimit", err)
	}
	if err := join("h", "a", small, other); err != nil {
		t.Fatalf("10 partitions: %v", err)
	}
	if err := join("h", "b", big); !errors.Is(err, metadata.ErrGroupLimit) {
		t.Fatalf("a second member's topic past the group's partitions: %v, want ErrGroupLimit", err)
	}

	// The partitions of members that expired do not count: h's members
	// (on small and other, 10 partitions) expire, and a join with big (7)
	// alone fits.
	later := now.Add(2 * time.Minute)
	if _, err := s.JoinGroup(ctx, "h", "z", keyOf("z"), []metadata.Topic{big}, time.Minute, later); err != nil {
		t.Fatalf("a join with big after the members on small and other expired: %v", err)
	}

	// Groups: g and h exist; a third is refused, a known one is not.
	if err := join("k", "a", small); !errors.Is(err, metadata.ErrGroupLimit) {
		t.Fatalf("third group: %v, want ErrGroupLimit", err)
	}
	if err := join("g", "c", small); err != nil {
		t.Fatalf("a join of an existing group at the group limit: %v", err)
	}
	// A reset would create a group too.
	if _, err := s.ResetGroupOffsets(ctx, "k", []metadata.GroupOffset{{Topic: "small", Partition: 0, Offset: 0}}, false); !errors.Is(err, metadata.ErrGroupLimit) {
		t.Fatalf("reset of a third group: %v, want ErrGroupLimit", err)
	}
}
