package metadata_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mambamq/mamba/metadata"
)

// groupOp is one call of a group script.
type groupOp struct {
	action  string // join, heartbeat, leave or commit
	member  string
	topics  []metadata.Topic // for join
	atSec   int64            // seconds after t0
	offsets []metadata.OffsetCommit
	release []metadata.TopicPartitionLease // for heartbeat
	// key is the session key presented; "" means the member's own,
	// keyOf(member).
	key string
}

// sessionKey is the key the op presents.
func (op groupOp) sessionKey() string {
	if op.key != "" {
		return op.key
	}
	return keyOf(op.member)
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
		return s.JoinGroup(ctx, "g", op.member, op.sessionKey(), op.topics, groupSession, now)
	case "heartbeat":
		if op.release == nil {
			return s.Heartbeat(ctx, "g", op.member, op.sessionKey(), now)
		}
		r, err := s.Sync(ctx, metadata.GroupSync{Group: "g", Member: op.member, SessionKey: op.sessionKey(), Release: op.release, Now: now})
		return r.Assignments, err
	case "leave":
		return nil, s.LeaveGroup(ctx, "g", op.member, op.sessionKey(), now)
	case "commit":
		return nil, s.CommitOffsets(ctx, "g", op.member, op.sessionKey(), op.offsets, now)
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

func heartbeat(member string, atSec int64) groupOp {
	return groupOp{action: "heartbeat", member: member, atSec: atSec}
}

// release is a heartbeat releasing partitions of topic t, given as
// partition, lease pairs.
func release(member string, atSec int64, pls ...int64) groupOp {
	op := heartbeat(member, atSec)
	op.release = []metadata.TopicPartitionLease{}
	for i := 0; i+1 < len(pls); i += 2 {
		op.release = append(op.release, metadata.TopicPartitionLease{Topic: "t", Partition: int32(pls[i]), Lease: pls[i+1]})
	}
	return op
}

// revoking marks assignments as revoking.
func revoking(as []metadata.Assignment) []metadata.Assignment {
	for i := range as {
		as[i].Revoking = true
	}
	return as
}

// commitOp is a commit by m1, which owns t/0 and t/1 in the tables.
func commitOp(ocs ...metadata.OffsetCommit) groupOp {
	return groupOp{action: "commit", member: "m1", offsets: ocs}
}

// memberEntry is a member's entry in the members hash: its topics,
// session timeout and the SHA-256 of its key.
func memberEntry(member, topics string) string {
	sum := sha256.Sum256([]byte(keyOf(member)))
	return member + "=" + topics + "|10000|" + hex.EncodeToString(sum[:])
}

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
// (leases 5, 6): m2's join revokes t/2 and t/3 from m1, which releases
// them (with its clock 5 s behind, so that its session still ends at 10 s
// and the group's activity stays at 5 s).
var twoMembers = []groupOp{join("m1", 0, groupTopic), join("m2", 5, groupTopic), release("m1", 0, 2, 3, 3, 4)}

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
			groupKeys + "assigned": "m1=0;t/0|1|0,t/1|2|0,t/2|3|0,t/3|4|0",
			"mamba:groups":         "g",
			groupKeys + "members":  memberEntry("m1", "t"),
			groupKeys + "expiry":   "1010000:m1",
			groupKeys + "owners":   "t/0=m1|1 t/1=m1|2 t/2=m1|3 t/3=m1|4",
			groupKeys + "meta":     "active=1000000",
			groupKeys + "lease":    "4",
			groupKeys + "topics":   "t=4",
		},
	},
	{
		name:  "a second member waits while its share is revoked from the first",
		setup: twoMembers[:1],
		op:    twoMembers[1],
		want:  nil,
		wantKeys: map[string]string{
			groupKeys + "assigned": "=1015000 m1=0;t/0|1|0,t/1|2|0,t/2|3|1,t/3|4|1 m2=1;",
			groupKeys + "members":  memberEntry("m1", "t") + " " + memberEntry("m2", "t"),
			groupKeys + "expiry":   "1010000:m1 1015000:m2",
			groupKeys + "meta":     "active=1005000",
			groupKeys + "revoking": "t/2=3|1015000 t/3=4|1015000",
		},
	},
	{
		name:  "the owner's heartbeat names the partitions it must release",
		setup: twoMembers[:2],
		op:    heartbeat("m1", 6),
		want:  append(assignments("t", 0, 1, 1, 2), revoking(assignments("t", 2, 3, 3, 4))...),
		wantKeys: map[string]string{
			groupKeys + "expiry": "1015000:m2 1016000:m1",
			groupKeys + "meta":   "active=1006000",
		},
	},
	{
		name:  "released partitions go to the waiting member under new leases",
		setup: twoMembers[:2],
		op:    release("m1", 6, 2, 3, 3, 4),
		want:  assignments("t", 0, 1, 1, 2),
		wantKeys: map[string]string{
			groupKeys + "assigned": "m1=0;t/0|1|0,t/1|2|0 m2=0;t/2|5|0,t/3|6|0",
			groupKeys + "expiry":   "1015000:m2 1016000:m1",
			groupKeys + "meta":     "active=1006000",
			groupKeys + "owners":   "t/0=m1|1 t/1=m1|2 t/2=m2|5 t/3=m2|6",
			groupKeys + "lease":    "6",
			groupKeys + "revoking": "<deleted>",
		},
	},
	{
		name:  "a release under a stale lease, or of a partition not revoking, changes nothing",
		setup: twoMembers[:2],
		op:    release("m1", 6, 2, 9, 0, 1),
		want:  append(assignments("t", 0, 1, 1, 2), revoking(assignments("t", 2, 3, 3, 4))...),
		wantKeys: map[string]string{
			groupKeys + "expiry": "1015000:m2 1016000:m1",
			groupKeys + "meta":   "active=1006000",
		},
	},
	{
		name:  "a release by another member changes nothing",
		setup: twoMembers[:2],
		op:    release("m2", 6, 2, 3),
		want:  nil,
		wantKeys: map[string]string{
			groupKeys + "expiry": "1010000:m1 1016000:m2",
			groupKeys + "meta":   "active=1006000",
		},
	},
	{
		name:     "the owner commits under its lease while the partition is revoking",
		setup:    twoMembers[:2],
		op:       commitOp(oc("t", 2, 10, 3)),
		wantKeys: map[string]string{groupKeys + "offsets": "t/2=10"},
	},
	{
		name: "a revoking partition moves when its deadline passes",
		// m1 keeps its session alive but does not release.
		setup: append(slices.Clone(twoMembers[:2]), heartbeat("m1", 9), heartbeat("m2", 14)),
		op:    heartbeat("m2", 15),
		want:  assignments("t", 2, 5, 3, 6),
		wantKeys: map[string]string{
			groupKeys + "assigned": "m1=0;t/0|1|0,t/1|2|0 m2=0;t/2|5|0,t/3|6|0",
			groupKeys + "expiry":   "1019000:m1 1025000:m2",
			groupKeys + "meta":     "active=1015000",
			groupKeys + "owners":   "t/0=m1|1 t/1=m1|2 t/2=m2|5 t/3=m2|6",
			groupKeys + "lease":    "6",
			groupKeys + "revoking": "<deleted>",
		},
	},
	{
		name:  "a revoking partition moves when its owner expires",
		setup: twoMembers[:2],
		op:    heartbeat("m2", 10),
		want:  assignments("t", 0, 5, 1, 6, 2, 7, 3, 8),
		wantKeys: map[string]string{
			groupKeys + "assigned": "m2=0;t/0|5|0,t/1|6|0,t/2|7|0,t/3|8|0",
			groupKeys + "members":  memberEntry("m2", "t"),
			groupKeys + "expiry":   "1020000:m2",
			groupKeys + "meta":     "active=1010000",
			groupKeys + "owners":   "t/0=m2|5 t/1=m2|6 t/2=m2|7 t/3=m2|8",
			groupKeys + "lease":    "8",
			groupKeys + "revoking": "<deleted>",
		},
	},
	{
		name:  "a revoking partition moves at once when its owner leaves",
		setup: twoMembers[:2],
		op:    groupOp{action: "leave", member: "m1", atSec: 6},
		wantKeys: map[string]string{
			groupKeys + "assigned": "m2=0;t/0|5|0,t/1|6|0,t/2|7|0,t/3|8|0",
			groupKeys + "members":  memberEntry("m2", "t"),
			groupKeys + "expiry":   "1015000:m2",
			groupKeys + "meta":     "active=1006000",
			groupKeys + "owners":   "t/0=m2|5 t/1=m2|6 t/2=m2|7 t/3=m2|8",
			groupKeys + "lease":    "8",
			groupKeys + "revoking": "<deleted>",
		},
	},
	{
		name:  "a revoking partition stays with its owner when the waiting member leaves",
		setup: twoMembers[:2],
		op:    groupOp{action: "leave", member: "m2", atSec: 6},
		wantKeys: map[string]string{
			groupKeys + "assigned": "m1=0;t/0|1|0,t/1|2|0,t/2|3|0,t/3|4|0",
			groupKeys + "members":  memberEntry("m1", "t"),
			groupKeys + "expiry":   "1010000:m1",
			groupKeys + "meta":     "active=1006000",
			groupKeys + "revoking": "<deleted>",
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
			groupKeys + "assigned": "<deleted>",
			groupKeys + "members":  memberEntry("m2", "t"),
			groupKeys + "expiry":   "1015000:m2",
		},
	},
	{
		name:  "an expired member's partitions move under new leases",
		setup: twoMembers,
		op:    groupOp{action: "heartbeat", member: "m2", atSec: 10},
		want:  assignments("t", 0, 7, 1, 8, 2, 5, 3, 6),
		wantKeys: map[string]string{
			groupKeys + "assigned": "m2=0;t/0|7|0,t/1|8|0,t/2|5|0,t/3|6|0",
			groupKeys + "members":  memberEntry("m2", "t"),
			groupKeys + "expiry":   "1020000:m2",
			groupKeys + "owners":   "t/0=m2|7 t/1=m2|8 t/2=m2|5 t/3=m2|6",
			groupKeys + "lease":    "8",
			groupKeys + "meta":     "active=1010000",
		},
	},
	{
		name:  "a leave hands the partitions over at once",
		setup: twoMembers,
		op:    groupOp{action: "leave", member: "m2", atSec: 1},
		wantKeys: map[string]string{
			groupKeys + "assigned": "m1=0;t/0|1|0,t/1|2|0,t/2|7|0,t/3|8|0",
			groupKeys + "members":  memberEntry("m1", "t"),
			groupKeys + "expiry":   "1010000:m1",
			groupKeys + "owners":   "t/0=m1|1 t/1=m1|2 t/2=m1|7 t/3=m1|8",
			groupKeys + "lease":    "8",
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
		setup: []groupOp{join("m1", 0, groupTopic, otherTopic), join("m2", 0, groupTopic), release("m1", 0, 2, 3, 3, 4), commitOp(oc("u", 0, 9, 5))},
		op:    groupOp{action: "leave", member: "m1", atSec: 1},
		wantKeys: map[string]string{
			groupKeys + "assigned": "m2=0;t/0|9|0,t/1|10|0,t/2|7|0,t/3|8|0",
			groupKeys + "members":  memberEntry("m2", "t"),
			groupKeys + "expiry":   "1010000:m2",
			groupKeys + "owners":   "t/0=m2|9 t/1=m2|10 t/2=m2|7 t/3=m2|8",
			groupKeys + "lease":    "10",
			groupKeys + "topics":   "t=4",
			groupKeys + "meta":     "active=1001000",
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
		op:    groupOp{action: "commit", member: "m1", atSec: 8, offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantKeys: map[string]string{
			groupKeys + "offsets": "t/0=10",
			groupKeys + "meta":    "active=1008000",
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
	{
		name:    "a commit naming another member's partition and lease",
		setup:   twoMembers,
		op:      groupOp{action: "commit", member: "m2", offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantErr: metadata.ErrLeaseLost,
	},
	{
		name:    "a commit with a wrong session key",
		setup:   twoMembers,
		op:      groupOp{action: "commit", member: "m1", key: keyOf("m2"), offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantErr: metadata.ErrSessionInvalid,
	},
	{
		name:    "a commit by a member whose session ran out, before anything expired it",
		setup:   twoMembers,
		op:      groupOp{action: "commit", member: "m1", atSec: 10, offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantErr: metadata.ErrMemberNotFound,
	},
	{
		name:    "a commit by a member that never joined",
		setup:   twoMembers,
		op:      groupOp{action: "commit", member: "m9", offsets: []metadata.OffsetCommit{oc("t", 0, 10, 1)}},
		wantErr: metadata.ErrMemberNotFound,
	},
	{
		name:    "a heartbeat with a wrong session key changes nothing",
		setup:   twoMembers,
		op:      groupOp{action: "heartbeat", member: "m1", atSec: 6, key: keyOf("m2")},
		wantErr: metadata.ErrSessionInvalid,
	},
	{
		name:    "a release with a wrong session key frees nothing",
		setup:   twoMembers[:2],
		op:      func() groupOp { op := release("m1", 6, 2, 3, 3, 4); op.key = "guess"; return op }(),
		wantErr: metadata.ErrSessionInvalid,
	},
	{
		name:    "a leave with a wrong session key keeps the member",
		setup:   twoMembers,
		op:      groupOp{action: "leave", member: "m2", key: keyOf("m1")},
		wantErr: metadata.ErrSessionInvalid,
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
