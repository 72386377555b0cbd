package metadata_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mambamq/mamba/metadata"
)

// TestLeaseCounterStartsAtRedisTime checks that a group's first lease
// comes from Redis's clock in microseconds, so that a group deleted and
// created again hands out leases above all of its earlier incarnation's: a
// zombie member of the deleted group cannot commit into the new one.
func TestLeaseCounterStartsAtRedisTime(t *testing.T) {
	runOnEngines(t, []string{"delete and recreate"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx, now := t.Context(), time.Now()
		before := redisNow(t, e)
		old, err := e.s.JoinGroup(ctx, "g", "m1", keyOf("m1"), []metadata.Topic{groupTopic}, groupSession, now)
		if err != nil {
			t.Fatal(err)
		}
		after := redisNow(t, e)
		var oldMax int64
		seen := map[int64]bool{}
		for _, a := range old {
			if a.Lease <= before.UnixMicro() || a.Lease > after.UnixMicro()+int64(len(old)) || seen[a.Lease] {
				t.Fatalf("lease %d: want distinct leases just above Redis's time in µs, between %d and %d", a.Lease, before.UnixMicro(), after.UnixMicro())
			}
			seen[a.Lease] = true
			oldMax = max(oldMax, a.Lease)
		}
		// Leases past 14 digits are written exactly, not in exponent form.
		if got := e.rdb.Get(ctx, groupKeys+"lease").Val(); got != strconv.FormatInt(oldMax, 10) {
			t.Fatalf("lease counter %q, want %d", got, oldMax)
		}
		if err := e.s.CommitOffsets(ctx, "g", "m1", keyOf("m1"), []metadata.OffsetCommit{oc("t", 0, 10, old[0].Lease)}, now); err != nil {
			t.Fatal(err)
		}
		if err := e.s.LeaveGroup(ctx, "g", "m1", keyOf("m1"), now); err != nil {
			t.Fatal(err)
		}
		if err := e.s.DeleteGroup(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		fresh, err := e.s.JoinGroup(ctx, "g", "m2", keyOf("m2"), []metadata.Topic{groupTopic}, groupSession, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range fresh {
			if a.Lease <= oldMax {
				t.Fatalf("lease %d of the new group is not above %d, the old group's last", a.Lease, oldMax)
			}
		}
		// m1, a zombie of the deleted group, commits under its old lease:
		// it is no member of the new group. Nor does the old lease pass
		// for the new group's member.
		err = e.s.CommitOffsets(ctx, "g", "m1", keyOf("m1"), []metadata.OffsetCommit{oc("t", 0, 99, old[0].Lease)}, now)
		if !errors.Is(err, metadata.ErrMemberNotFound) {
			t.Fatalf("zombie commit into the new group: err = %v, want ErrMemberNotFound", err)
		}
		err = e.s.CommitOffsets(ctx, "g", "m2", keyOf("m2"), []metadata.OffsetCommit{oc("t", 0, 99, old[0].Lease)}, now)
		if !errors.Is(err, metadata.ErrLeaseLost) {
			t.Fatalf("commit under the old group's lease: err = %v, want ErrLeaseLost", err)
		}
		if _, offs, err := e.s.DescribeGroup(ctx, "g", now); err != nil || len(offs) != 0 {
			t.Fatalf("new group's offsets = %+v, %v; want none", offs, err)
		}
	})
}

// notFoundHook runs then once, right after the first script call that
// fails with GROUP_NOT_FOUND: between delete_group.lua and the removal
// of the name from the groups set.
type notFoundHook struct {
	then  func()
	fired bool
}

func (h *notFoundHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *notFoundHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *notFoundHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !h.fired && err != nil && strings.Contains(err.Error(), "GROUP_NOT_FOUND") {
			h.fired = true
			h.then()
		}
		return err
	}
}

// TestDeleteGroupNotFoundKeepsNameOfGroupJoinedMeanwhile deletes an
// unknown group while a join creates it between the script and the
// removal of its name: the name stays in the groups set.
func TestDeleteGroupNotFoundKeepsNameOfGroupJoinedMeanwhile(t *testing.T) {
	runOnEngines(t, []string{"join between"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		hook := &notFoundHook{then: func() {
			if _, err := e.s.JoinGroup(ctx, "g", "m1", keyOf("m1"), []metadata.Topic{groupTopic}, groupSession, time.Now()); err != nil {
				t.Error(err)
			}
		}}
		hooked := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr})
		t.Cleanup(func() { hooked.Close() })
		hooked.AddHook(hook)
		deleter := metadata.New(hooked, metadata.Options{DedupWindow: dedupWindow})
		if err := deleter.DeleteGroup(ctx, "g"); !errors.Is(err, metadata.ErrGroupNotFound) {
			t.Fatalf("delete: err = %v, want ErrGroupNotFound", err)
		}
		if !hook.fired {
			t.Fatal("the join did not run between the script and the removal")
		}
		if groups, err := e.s.Groups(ctx); err != nil || !slices.Equal(groups, []string{"g"}) {
			t.Fatalf("groups = %v, %v; want g, joined during the delete", groups, err)
		}
	})
}

// TestLoadSnapshotRaisesLeaseCounter loads a checkpoint whose group
// counter is 5: leases handed out after it on the lost Redis (6, 7, ...)
// must not be handed out again, so the counter starts at Redis's clock in
// µs instead.
func TestLoadSnapshotRaisesLeaseCounter(t *testing.T) {
	runOnEngines(t, []string{"restore"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		before := redisNow(t, e)
		snap := &metadata.Snapshot{Groups: []metadata.GroupSnapshot{{Name: "g", Lease: 5}}}
		if err := e.s.LoadSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		as, err := e.s.JoinGroup(ctx, "g", "m1", keyOf("m1"), []metadata.Topic{groupTopic}, groupSession, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Lease <= before.UnixMicro() {
				t.Fatalf("lease %d after the restore is not above Redis's time %d µs", a.Lease, before.UnixMicro())
			}
		}
	})
}
