package metadata_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// groupDeleteCase is one call of scripts/delete_group.lua at atSec: an
// API delete (cutoffSec < 0) or an expiry whose retention reaches back to
// cutoffSec. The script reads Redis's clock, so the setup runs at seconds
// counted back from it: atSec is Redis's time when the case starts.
type groupDeleteCase struct {
	name      string
	setup     []groupOp
	raw       map[string]string // hash keys written directly, field=value
	atSec     int64
	cutoffSec int64
	wantDel   bool
	wantErr   error
	wantKeys  map[string]string
}

// allGone is every key of a group whose last member left (its owners and
// topics went with the member), deleted, and the groups set emptied (so
// deleted too).
var allGone = map[string]string{
	"mamba:groups": gone, groupKeys + "offsets": gone, groupKeys + "lease": gone, groupKeys + "meta": gone,
}

// leftWithOffsets: m1 joined t at 0, committed t/0 = 10, and left at 2.
var leftWithOffsets = []groupOp{
	join("m1", 0, groupTopic), commitOp(oc("t", 0, 10, 1)),
	{action: "leave", member: "m1", atSec: 2},
}

var groupDeleteCases = []groupDeleteCase{
	{name: "an unknown group", cutoffSec: -1, wantErr: metadata.ErrGroupNotFound},
	{
		name: "an unknown group's name left in the groups set goes",
		raw:  map[string]string{}, cutoffSec: -1, wantErr: metadata.ErrGroupNotFound,
		wantKeys: map[string]string{"mamba:groups": gone},
	},
	{
		name:  "a group with a live member is kept",
		setup: []groupOp{join("m1", 0, groupTopic)}, atSec: 5, cutoffSec: -1,
		wantErr: metadata.ErrGroupNotEmpty,
	},
	{
		name:  "a group whose members left is deleted with its offsets",
		setup: leftWithOffsets, atSec: 3, cutoffSec: -1, wantDel: true,
		wantKeys: allGone,
	},
	{
		name:  "a member whose session ran out does not keep the group",
		setup: []groupOp{join("m1", 0, groupTopic)}, atSec: 10, cutoffSec: -1, wantDel: true,
		wantKeys: map[string]string{
			"mamba:groups": gone, groupKeys + "members": gone, groupKeys + "expiry": gone, groupKeys + "lease": gone,
			groupKeys + "topics": gone, groupKeys + "owners": gone, groupKeys + "meta": gone, groupKeys + "assigned": gone,
		},
	},
	{
		name:  "expiry deletes a group idle since before the cutoff",
		setup: leftWithOffsets, atSec: 100, cutoffSec: 2, wantDel: true,
		wantKeys: allGone,
	},
	{
		name:  "expiry keeps a group active after the cutoff",
		setup: leftWithOffsets, atSec: 100, cutoffSec: 1,
	},
	{
		name:  "expiry keeps a group with a live member",
		setup: []groupOp{join("m1", 0, groupTopic)}, atSec: 5, cutoffSec: 4,
	},
	{
		name: "expiry starts the clock of a group with no activity recorded",
		raw:  map[string]string{groupKeys + "offsets": "t/0=7"}, atSec: 100, cutoffSec: 50,
		wantKeys: map[string]string{groupKeys + "meta": "active=NOW"}, // Redis's time in ms
	},
}

// TestDeleteGroupScript runs scripts/delete_group.lua (DeleteGroup,
// ExpireGroup).
func TestDeleteGroupScript(t *testing.T) {
	runOnEngines(t, groupDeleteCases, func(c groupDeleteCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc groupDeleteCase) {
		ctx := t.Context()
		start := redisNow(t, e)
		base := start.Add(-time.Duration(tc.atSec) * time.Second)
		if len(tc.setup) > 0 {
			seedLeases(t, e)
		}
		for _, op := range tc.setup {
			if _, err := op.runAt(t, e.s, base); err != nil {
				t.Fatalf("setup %+v: %v", op, err)
			}
		}
		if tc.raw != nil {
			e.rdb.SAdd(ctx, "mamba:groups", "g")
			for k, v := range tc.raw {
				f, val, _ := cutEq(v)
				e.rdb.HSet(ctx, k, f, val)
			}
		}
		before := keyState(t, e.rdb)
		var deleted bool
		var err error
		if tc.cutoffSec < 0 {
			err = e.s.DeleteGroup(ctx, "g")
			deleted = err == nil
		} else {
			deleted, err = e.s.ExpireGroup(ctx, "g", time.Duration(tc.atSec-tc.cutoffSec)*time.Second)
		}
		if want, ok := tc.wantKeys[groupKeys+"meta"]; ok && want == "active=NOW" {
			active, _ := strconv.ParseInt(e.rdb.HGet(ctx, groupKeys+"meta", "active").Val(), 10, 64)
			if end := redisNow(t, e); active < start.UnixMilli() || active > end.UnixMilli() {
				t.Errorf("active = %d, want Redis's time, between %d and %d", active, start.UnixMilli(), end.UnixMilli())
			}
			tc.wantKeys = map[string]string{groupKeys + "meta": "active=" + strconv.FormatInt(active, 10)}
		}
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("err = %v, want %v", err, tc.wantErr)
		}
		if deleted != tc.wantDel {
			t.Errorf("deleted = %v, want %v", deleted, tc.wantDel)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
		groups, err := e.s.Groups(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tc.wantDel && len(groups) != 0 {
			t.Errorf("groups after the delete = %v", groups)
		}
	})
}

func cutEq(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

type forgetCase struct {
	name     string
	forget   []metadata.GroupOffset
	want     int
	wantKeys map[string]string
}

// TestForgetOffsetsScript runs scripts/forget_offsets.lua
// (ForgetGroupOffsets) on a group with t/0 = 10 and t/1 = 20 committed.
func TestForgetOffsetsScript(t *testing.T) {
	cases := []forgetCase{
		{
			name:     "offsets still holding the value read go",
			forget:   []metadata.GroupOffset{{Topic: "t", Partition: 0, Offset: 10}, {Topic: "t", Partition: 1, Offset: 20}},
			want:     2,
			wantKeys: map[string]string{groupKeys + "offsets": gone},
		},
		{
			name:     "an offset committed since is kept",
			forget:   []metadata.GroupOffset{{Topic: "t", Partition: 0, Offset: 10}, {Topic: "t", Partition: 1, Offset: 19}},
			want:     1,
			wantKeys: map[string]string{groupKeys + "offsets": "t/1=20"},
		},
		{
			name:   "an offset never committed",
			forget: []metadata.GroupOffset{{Topic: "u", Partition: 0, Offset: 0}},
		},
	}
	runOnEngines(t, cases, func(c forgetCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc forgetCase) {
		seedLeases(t, e)
		for _, op := range append(twoMembers, commitOp(oc("t", 0, 10, 1), oc("t", 1, 20, 2))) {
			if _, err := op.run(t, e.s); err != nil {
				t.Fatalf("setup %+v: %v", op, err)
			}
		}
		before := keyState(t, e.rdb)
		n, err := e.s.ForgetGroupOffsets(t.Context(), "g", tc.forget)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("removed %d, want %d", n, tc.want)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}

// TestJoinOffsetReset checks that a join sets the group's offset reset
// policy, a join naming none keeps it, and a bad one is refused.
func TestJoinOffsetReset(t *testing.T) {
	runOnEngines(t, []string{"policy"}, func(n string) string { return n }, func(t *testing.T, e *scriptEnv, _ string) {
		ctx := t.Context()
		join := func(member, reset string) (metadata.Joined, error) {
			return e.s.Join(ctx, metadata.GroupJoin{Group: "g", Member: member, SessionKey: keyOf(member), Topics: []metadata.Topic{groupTopic},
				Session: groupSession, OffsetReset: reset, Now: t0})
		}
		if j, err := join("m1", ""); err != nil || j.OffsetReset != metadata.OffsetResetEarliest || len(j.Assignments) != 4 {
			t.Fatalf("first join = %+v, %v; want earliest and 4 partitions", j, err)
		}
		if j, err := join("m2", "latest"); err != nil || j.OffsetReset != metadata.OffsetResetLatest {
			t.Fatalf("join naming latest = %+v, %v", j, err)
		}
		if j, err := join("m3", ""); err != nil || j.OffsetReset != metadata.OffsetResetLatest {
			t.Fatalf("join naming none = %+v, %v; want the group's latest", j, err)
		}
		if p, err := e.s.GroupOffsetReset(ctx, "g"); err != nil || p != metadata.OffsetResetLatest {
			t.Fatalf("GroupOffsetReset = %q, %v", p, err)
		}
		if _, err := join("m4", "newest"); err == nil {
			t.Fatal("join naming newest: no error")
		}
		if p, err := e.s.GroupOffsetReset(ctx, "unknown"); err != nil || p != metadata.OffsetResetEarliest {
			t.Fatalf("GroupOffsetReset of an unknown group = %q, %v", p, err)
		}
	})
}

// redisNow reads the engine's clock, which the scripts that call TIME
// use.
func redisNow(t *testing.T, e *scriptEnv) time.Time {
	t.Helper()
	now, err := e.s.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return now
}
