package metadata_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// groupOp is one call of a group script.
type groupOp struct {
	action  string // join, heartbeat or leave
	member  string
	topics  []metadata.Topic // for join
	atSec   int64            // seconds after t0
	offsets []metadata.OffsetCommit
}

var t0 = time.UnixMilli(1_000_000)

const groupSession = 10 * time.Second

func (op groupOp) run(t *testing.T, s *metadata.Store) ([]metadata.Assignment, error) {
	t.Helper()
	return op.runAt(t, s, t0)
}

// runAt runs the op atSec seconds after base.
func (op groupOp) runAt(t *testing.T, s *metadata.Store, base time.Time) ([]metadata.Assignment, error) {
	t.Helper()
	ctx, now := t.Context(), base.Add(time.Duration(op.atSec)*time.Second)
	switch op.action {
	case "join":
		return s.JoinGroup(ctx, "g", op.member, op.topics, groupSession, now)
	case "heartbeat":
		return s.Heartbeat(ctx, "g", op.member, now)
	case "leave":
		return nil, s.LeaveGroup(ctx, "g", op.member, now)
	case "commit":
		return nil, s.CommitOffsets(ctx, "g", op.offsets, now)
	}
	t.Fatalf("unknown action %q", op.action)
	return nil, nil
}

func assignments(topic string, pls ...int64) []metadata.Assignment {
	var out []metadata.Assignment
	for i := 0; i+1 < len(pls); i += 2 {
		out = append(out, metadata.Assignment{Topic: topic, Partition: int32(pls[i]), Lease: pls[i+1], CommittedOffset: -1})
	}
	return out
}

const groupKeys = "mamba:{g:g}:"

var (
	groupTopic = topic("t", 4)
	otherTopic = topic("u", 2)
)

func join(member string, atSec int64, topics ...metadata.Topic) groupOp {
	return groupOp{action: "join", member: member, topics: topics, atSec: atSec}
}

func commitOp(ocs ...metadata.OffsetCommit) groupOp { return groupOp{action: "commit", offsets: ocs} }

func oc(topic string, p int32, off, lease int64) metadata.OffsetCommit {
	return metadata.OffsetCommit{Topic: topic, Partition: p, Offset: off, Lease: lease}
}

// seedLeases sets the group's lease counter to 0, as if Redis's clock had
// read 0 when the group handed out its first lease, so that the tables can
// name leases 1, 2, ... (TestLeaseCounterStartsAtRedisTime checks the
// real start).
func seedLeases(t *testing.T, e *scriptEnv) {
	t.Helper()
	if err := e.rdb.Set(t.Context(), groupKeys+"lease", 0, 0).Err(); err != nil {
		t.Fatal(err)
	}
}

// twoMembers leaves m1 with t/0, t/1 (leases 1, 2) and m2 with t/2, t/3
// (leases 5, 6).
var twoMembers = []groupOp{join("m1", 0, groupTopic), join("m2", 5, groupTopic)}

type groupCase struct {
	name     string
	setup    []groupOp
	op       groupOp
	want     []metadata.Assignment
	wantErr  error
	wantKeys map[string]string
}

var groupCases = []groupCase{
	{
		name: "the first member takes every partition",
		op:   join("m1", 0, groupTopic),
		want: assignments("t", 0, 1, 1, 2, 2, 3, 3, 4),
		wantKeys: map[string]string{
			"mamba:groups":        "g",
			groupKeys + "members": "m1=t|10000",
			groupKeys + "expiry":  "1010000:m1",
			groupKeys + "owners":  "t/0=m1|1 t/1=m1|2 t/2=m1|3 t/3=m1|4",
			groupKeys + "meta":    "active=1000000",
			groupKeys + "lease":   "4",
			groupKeys + "topics":  "t=4",
		},
	},
	{
		name:  "a second member gets its share under new leases",
		setup: twoMembers[:1],
		op:    twoMembers[1],
		want:  assignments("t", 2, 5, 3, 6),
		wantKeys: map[string]string{
			groupKeys + "members": "m1=t|10000 m2=t|10000",
			groupKeys + "expiry":  "1010000:m1 1015000:m2",
			groupKeys + "meta":    "active=1005000",
			groupKeys + "owners":  "t/0=m1|1 t/1=m1|2 t/2=m2|5 t/3=m2|6",
			groupKeys + "lease":   "6",
		},
	},
	{
		name:  "a heartbeat extends the session and keeps partitions and leases",
		setup: twoMembers,
		op:    groupOp{action: "heartbeat", member: "m1", atSec: 8},
		want:  assignments("t", 0, 1, 1, 2),
		wantKeys: map[string]string{
			groupKeys + "expiry": "1015000:m2 1018000:m1",
			groupKeys + "meta":   "active=1008000",
		},
	},
	{
		name:  "the heartbeat reports committed offsets",
		setup: append(slices.Clone(twoMembers), commitOp(oc("t", 1, 42, 2))),
		op:    groupOp{action: "heartbeat", member: "m1", atSec: 1},
		want: []metadata.Assignment{
			{Topic: "t", Partition: 0, Lease: 1, CommittedOffset: -1},
			{Topic: "t", Partition: 1, Lease: 2, CommittedOffset: 42},
		},
		wantKeys: map[string]string{groupKeys + "expiry": "1011000:m1 1015000:m2"},
	},
	{
		name:    "a heartbeat of a member that never joined",
		setup:   twoMembers,
		op:      groupOp{action: "heartbeat", member: "m9", atSec: 1},
		wantErr: metadata.ErrMemberNotFound,
	},
	{
		name:    "a heartbeat after the session ran out",
		setup:   twoMembers,
		op:      groupOp{action: "heartbeat", member: "m1", atSec: 10},
		wantErr: metadata.ErrMemberNotFound,
		// The expired member is removed even though the call fails;
		// its partitions move at the next successful call.
		wantKeys: map[string]string{
			groupKeys + "members": "m2=t|10000",
			groupKeys + "expiry":  "1015000:m2",
		},
	},
	{
		name:  "an expired member's partitions move under new leases",
		setup: twoMembers,
		op:    groupOp{action: "heartbeat", member: "m2", atSec: 10},
		want:  assignments("t", 0, 7, 1, 8, 2, 5, 3, 6),
		wantKeys: map[string]string{
			groupKeys + "members": "m2=t|10000",
			groupKeys + "expiry":  "1020000:m2",
			groupKeys + "owners":  "t/0=m2|7 t/1=m2|8 t/2=m2|5 t/3=m2|6",
			groupKeys + "lease":   "8",
			groupKeys + "meta":    "active=1010000",
		},
	},
	{
		name:  "a leave hands the partitions over at once",
		setup: twoMembers,
		op:    groupOp{action: "leave", member: "m2", atSec: 1},
		wantKeys: map[string]string{
			groupKeys + "members": "m1=t|10000",
			groupKeys + "expiry":  "1010000:m1",
			groupKeys + "owners":  "t/0=m1|1 t/1=m1|2 t/2=m1|7 t/3=m1|8",
			groupKeys + "lease":   "8",
		},
	},
	{
		name:    "a leave of a member that is gone",
		setup:   twoMembers,
		op:      groupOp{action: "leave", member: "m9", atSec: 1},
		wantErr: metadata.ErrMemberNotFound,
	},
	{
		name: "a topic nobody subscribes to loses its owners but keeps its offsets",
		// m1: t/0..3 = 1..4, u/0..1 = 5..6; m2 takes t/2, t/3 = 7, 8.
		setup: []groupOp{join("m1", 0, groupTopic, otherTopic), join("m2", 0, groupTopic), commitOp(oc("u", 0, 9, 5))},
		op:    groupOp{action: "leave", member: "m1", atSec: 1},
		wantKeys: map[string]string{
			groupKeys + "members": "m2=t|10000",
			groupKeys + "expiry":  "1010000:m2",
			groupKeys + "owners":  "t/0=m2|9 t/1=m2|10 t/2=m2|7 t/3=m2|8",
			groupKeys + "lease":   "10",
			groupKeys + "topics":  "t=4",
			groupKeys + "meta":    "active=1001000",
		},
	},
	{
		name:     "offsets under current leases are all stored",
		setup:    twoMembers,
		op:       commitOp(oc("t", 0, 10, 1), oc("t", 1, 20, 2)),
		wantKeys: map[string]string{groupKeys + "offsets": "t/0=10 t/1=20"},
	},
	{
		name:     "a later commit replaces the offset",
		setup:    append(slices.Clone(twoMembers), commitOp(oc("t", 0, 10, 1))),
		op:       commitOp(oc("t", 0, 4, 1)),
		wantKeys: map[string]string{groupKeys + "offsets": "t/0=4"},
	},
	{
		name:  "a commit raises the group's last activity",
		setup: twoMembers,
		op:    groupOp{action: "commit", atSec: 20, offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantKeys: map[string]string{
			groupKeys + "offsets": "t/0=10",
			groupKeys + "meta":    "active=1020000",
		},
	},
	{
		name:    "one lost lease stores no offset",
		setup:   append(slices.Clone(twoMembers), commitOp(oc("t", 0, 10, 1))),
		op:      commitOp(oc("t", 0, 11, 1), oc("t", 2, 20, 3)), // t/2 moved to m2 under lease 5
		wantErr: metadata.ErrLeaseLost,
	},
	{
		name:    "a partition nobody owns",
		setup:   twoMembers,
		op:      commitOp(oc("t", 7, 10, 1)),
		wantErr: metadata.ErrLeaseLost,
	},
}

// TestGroupScripts runs scripts/group_sync.lua (JoinGroup, Heartbeat,
// LeaveGroup) and scripts/commit_offsets.lua (CommitOffsets).
func TestGroupScripts(t *testing.T) {
	runOnEngines(t, groupCases, func(c groupCase) string { return c.name }, func(t *testing.T, e *scriptEnv, tc groupCase) {
		seedLeases(t, e)
		for _, op := range tc.setup {
			if _, err := op.run(t, e.s); err != nil {
				t.Fatalf("setup %+v: %v", op, err)
			}
		}
		before := keyState(t, e.rdb)
		got, err := tc.op.run(t, e.s)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("%s: err = %v, want %v", tc.op.action, err, tc.wantErr)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s = %+v, want %+v", tc.op.action, got, tc.want)
		}
		checkChanges(t, e.rdb, before, tc.wantKeys)
	})
}
