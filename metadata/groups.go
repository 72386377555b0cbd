package metadata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Consumer groups live under the hash tag {g:<group>}, so that every group
// operation is one atomic script:
//
//	mamba:groups               set    names of all groups (no hash tag)
//	mamba:{g:G}:members        hash   member id -> "topic,topic|session_ms|key_sha256"
//	mamba:{g:G}:expiry         zset   member id, scored by expiry (unix ms)
//	mamba:{g:G}:topics         hash   topic -> partition count, as members saw it
//	mamba:{g:G}:owners         hash   "topic/partition" -> "member|lease"
//	mamba:{g:G}:offsets        hash   "topic/partition" -> committed offset
//	mamba:{g:G}:lease          string last lease (fencing token) handed out
//	mamba:{g:G}:meta           hash   active -> last join, heartbeat, leave or
//	                                  commit (unix ms); offset_reset -> policy
//	mamba:{g:G}:revoking       hash   "topic/partition" -> "lease|deadline" of
//	                                  partitions their owner must release
//	mamba:{g:G}:assigned       hash   member id -> its partitions, leases,
//	                                  revoking flags and waiting, as the
//	                                  last rebalance left them ("" -> the
//	                                  earliest revocation deadline); an
//	                                  expiry or a forced offset reset
//	                                  deletes it, every rebalance writes it
//	                                  anew, delete_group.lua removes it.
//	                                  One entry per live member, every
//	                                  subscribed partition once: at most
//	                                  MaxGroupMembers entries and
//	                                  MaxGroupPartitions partitions
//
// Every join, heartbeat and leave first expires members whose session ran
// out, then rebalances: each topic's partitions are spread over the live
// members subscribed to it, each holding its fair share (the floor or the
// ceiling of partitions/members), keeping partitions where they are when it
// can. A partition never goes from one live member to another in one
// step: the rebalance marks it revoking, its owner keeps it under its
// lease until it releases it (Sync with Release), leaves, expires, or lets
// the deadline (its session timeout from the revocation) pass, and only
// then does another member get it. A partition that changes hands gets a
// new lease, greater than every
// lease before it (a group's counter starts at Redis's clock in
// microseconds, so a group deleted and created again does not hand out
// its predecessor's leases); an offset commit must name the partition's current
// lease, so a member that lost a partition can never move the group's
// position.
//
// Leases are ordered, so they can be guessed; what authorizes a member is
// its session key: 128 random bits the caller draws at join (ingest does,
// with crypto/rand) and presents with every heartbeat, leave and offset
// commit. Redis keeps only the key's SHA-256 (hex), in the member's entry
// of the members hash, which goes with the member; describe never shows
// it. A commit is stored only for a live member that presents its key and
// owns every partition of the commit under the lease it names. The
// coordinator is scripts/group_sync.lua, the fenced offset
// commit scripts/commit_offsets.lua.

var (
	// ErrMemberNotFound is returned for a member that left, expired, or
	// never joined.
	ErrMemberNotFound = errors.New("member not found")
	// ErrLeaseLost is returned when an offset commit names a lease that is
	// no longer the partition's current lease.
	ErrLeaseLost = errors.New("lease lost")
	// ErrSessionInvalid is returned for a heartbeat, leave or offset
	// commit whose session key is not the member's.
	ErrSessionInvalid = errors.New("session key invalid")
	// ErrGroupLimit is returned for a join that would take a group, or
	// the number of groups, over MaxGroupMembers, MaxGroupPartitions or
	// MaxGroups.
	ErrGroupLimit = errors.New("group limit")
)

// Group limits, the defaults of Options.GroupLimits. They bound the work of one join, heartbeat or leave (the
// rebalance walks the group's subscribed partitions and, for each one
// that is free, its members) and what the groups keep in Redis.
const (
	// MaxGroupMembers bounds the live members of one group.
	MaxGroupMembers = 1000
	// MaxGroupPartitions bounds the partitions a group's members
	// subscribe to, summed over the group's topics.
	MaxGroupPartitions = 10000
	// MaxGroups bounds the groups in the metadata store. It is checked
	// before a join creates a group, so joins racing to create groups may
	// pass it by their number.
	MaxGroups = 100000
)

// Session timeout bounds.
const (
	MinSessionTimeout = 1 * time.Second
	MaxSessionTimeout = 5 * time.Minute
)

// Assignment is one partition held by a member.
type Assignment struct {
	Topic     string
	Partition int32
	// Lease is the fencing token for offset commits.
	Lease int64
	// CommittedOffset is the next offset the group reads, or -1 when the
	// group never committed one for the partition.
	CommittedOffset int64
	// Revoking is set when the group moves the partition to another
	// member: the owner should commit what it processed and release it
	// (GroupSync.Release); it still owns it, under Lease, until then.
	Revoking bool
}

// Member is a live member of a group.
type Member struct {
	ID             string
	Topics         []string
	SessionTimeout time.Duration
	Expires        time.Time
	Assignments    []Assignment
}

// GroupOffset is a committed offset of a group.
type GroupOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// OffsetCommit is one offset to commit, with the lease it is committed
// under.
type OffsetCommit struct {
	Topic     string
	Partition int32
	Offset    int64
	Lease     int64
}

func (s *Store) groupKey(group, suffix string) string {
	return s.prefix + ":{g:" + group + "}:" + suffix
}

func (s *Store) groupKeys(group string) []string {
	return []string{
		s.groupKey(group, "members"), s.groupKey(group, "expiry"), s.groupKey(group, "owners"),
		s.groupKey(group, "offsets"), s.groupKey(group, "lease"), s.groupKey(group, "topics"),
		s.groupKey(group, "meta"), s.groupKey(group, "revoking"), s.groupKey(group, "assigned"),
	}
}

func (s *Store) groupsKey() string { return s.prefix + ":groups" }

// ValidateGroupName applies the topic name rule to group names.
func ValidateGroupName(group string) error {
	if len(group) == 0 || len(group) > 249 {
		return fmt.Errorf("group name must be 1 to 249 characters, not %d", len(group))
	}
	for i := 0; i < len(group); i++ {
		c := group[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("group name %q may hold only A-Z, a-z, 0-9, '.', '_' and '-'", group)
		}
	}
	return nil
}

// Offset reset policies: where a member continues when the group's
// committed offset for a partition is below the partition's log start
// offset (retention deleted records the group had not read).
const (
	// OffsetResetEarliest continues from the log start offset, the oldest
	// record still kept. It is the default.
	OffsetResetEarliest = "earliest"
	// OffsetResetLatest continues from the high watermark, skipping to
	// records produced from then on.
	OffsetResetLatest = "latest"
)

// ValidateOffsetReset accepts "" (keep the group's policy), "earliest"
// and "latest".
func ValidateOffsetReset(policy string) error {
	switch policy {
	case "", OffsetResetEarliest, OffsetResetLatest:
		return nil
	}
	return fmt.Errorf("offset_reset %q is neither %q nor %q", policy, OffsetResetEarliest, OffsetResetLatest)
}

// GroupJoin is one member joining a group.
type GroupJoin struct {
	Group, Member string
	// SessionKey is the member's secret (see the package comment); Redis
	// keeps only its SHA-256. It must not be empty.
	SessionKey string
	// Topics are the member's topics, each with its partition count.
	Topics  []Topic
	Session time.Duration
	// OffsetReset sets the group's offset reset policy; "" keeps it.
	OffsetReset string
	Now         time.Time
}

// Joined is the answer to a join.
type Joined struct {
	Assignments []Assignment
	// Waiting is set while the member is below its share because
	// partitions it is to get are still being released (Synced.Waiting).
	Waiting bool
	// OffsetReset is the group's policy after the join.
	OffsetReset string
}

// JoinGroup adds a member, with its session key, subscribed to topics
// (each with its partition count) and returns its assignments after the
// rebalance.
func (s *Store) JoinGroup(ctx context.Context, group, member, key string, topics []Topic, session time.Duration, now time.Time) ([]Assignment, error) {
	j, err := s.Join(ctx, GroupJoin{Group: group, Member: member, SessionKey: key, Topics: topics, Session: session, Now: now})
	return j.Assignments, err
}

// Join adds a member to a group, sets the group's offset reset policy if
// the join names one, and returns the member's assignments after the
// rebalance and the group's policy.
func (s *Store) Join(ctx context.Context, j GroupJoin) (Joined, error) {
	if len(j.Topics) == 0 {
		return Joined{}, errors.New("join group: no topics")
	}
	if err := ValidateOffsetReset(j.OffsetReset); err != nil {
		return Joined{}, fmt.Errorf("join group %s: %w", j.Group, err)
	}
	if j.SessionKey == "" || j.Member == "" {
		return Joined{}, fmt.Errorf("join group %s: no member id or no session key", j.Group)
	}
	names := make([]string, len(j.Topics))
	args := []any{j.Now.UnixMilli(), "join", j.Member, "", j.Session.Milliseconds(), len(j.Topics)}
	for i, t := range j.Topics {
		names[i] = t.Name
		args = append(args, t.Name, t.Partitions)
	}
	args[3] = strings.Join(names, ",")
	args = append(args, j.OffsetReset, s.groupLimits.Members, s.groupLimits.Partitions, sessionKeyHash(j.SessionKey))
	if err := s.checkGroupCount(ctx, j.Group); err != nil {
		return Joined{}, err
	}
	raw, err := s.runGroupSync(ctx, j.Group, args)
	if err != nil {
		return Joined{}, err
	}
	if len(raw)%4 != 2 {
		return Joined{}, fmt.Errorf("join group %s: malformed answer of %d elements", j.Group, len(raw))
	}
	as, err := parseAssignments(raw[:len(raw)-2])
	if err != nil {
		return Joined{}, err
	}
	if err := s.rdb.SAdd(ctx, s.groupsKey(), j.Group).Err(); err != nil {
		return Joined{}, unavailable("join group "+j.Group, err)
	}
	return Joined{Assignments: as, Waiting: raw[len(raw)-2] == "1", OffsetReset: raw[len(raw)-1]}, nil
}

// Heartbeat extends the member's session and returns its assignments
// after the rebalance. A member that is gone gets ErrMemberNotFound, a
// wrong key ErrSessionInvalid.
func (s *Store) Heartbeat(ctx context.Context, group, member, key string, now time.Time) ([]Assignment, error) {
	r, err := s.Sync(ctx, GroupSync{Group: group, Member: member, SessionKey: key, Now: now})
	return r.Assignments, err
}

// Synced is the answer to a heartbeat.
type Synced struct {
	Assignments []Assignment
	// Waiting is set while the member is below its share of a topic
	// because partitions it is to get are still revoking from other
	// members: it gets them, at a later heartbeat, once released. A
	// waiting member should heartbeat sooner than usual.
	Waiting bool
}

// GroupSync is one heartbeat of a member, with the partitions it
// releases.
type GroupSync struct {
	Group, Member string
	// SessionKey is the key the member joined with.
	SessionKey string
	// Release are partitions the member was told to release (Revoking),
	// each with its lease. A partition the member does not own under
	// that lease, or was not told to release, is left as it is.
	Release []TopicPartitionLease
	Now     time.Time
}

// TopicPartitionLease names a partition held under a lease.
type TopicPartitionLease struct {
	Topic     string
	Partition int32
	Lease     int64
}

// MaxRelease bounds the partitions one heartbeat releases.
const MaxRelease = 10000

// Sync extends the member's session, frees the partitions it releases
// (each goes to a member below its share in the same call), and returns
// the member's assignments after the rebalance. A member that is gone
// gets ErrMemberNotFound.
func (s *Store) Sync(ctx context.Context, hb GroupSync) (Synced, error) {
	if len(hb.Release) > MaxRelease {
		return Synced{}, fmt.Errorf("heartbeat group %s: %d partitions released, at most %d", hb.Group, len(hb.Release), MaxRelease)
	}
	args := []any{hb.Now.UnixMilli(), "heartbeat", hb.Member, sessionKeyHash(hb.SessionKey), len(hb.Release)}
	for _, r := range hb.Release {
		args = append(args, r.Topic+"/"+strconv.Itoa(int(r.Partition)), r.Lease)
	}
	raw, err := s.runGroupSync(ctx, hb.Group, args)
	if err != nil {
		return Synced{}, err
	}
	if len(raw)%4 != 1 {
		return Synced{}, fmt.Errorf("heartbeat group %s: malformed answer of %d elements", hb.Group, len(raw))
	}
	as, err := parseAssignments(raw[:len(raw)-1])
	return Synced{Assignments: as, Waiting: raw[len(raw)-1] == "1"}, err
}

// LeaveGroup removes the member, if key is its session key, and hands its
// partitions to the others at once.
func (s *Store) LeaveGroup(ctx context.Context, group, member, key string, now time.Time) error {
	_, err := s.runGroupSync(ctx, group, []any{now.UnixMilli(), "leave", member, sessionKeyHash(key)})
	return err
}

// checkGroupCount refuses a join that would create a group past
// MaxGroups.
func (s *Store) checkGroupCount(ctx context.Context, group string) error {
	n, err := s.rdb.SCard(ctx, s.groupsKey()).Result()
	if err != nil {
		return unavailable("count groups", err)
	}
	if n < int64(s.groupLimits.Groups) {
		return nil
	}
	known, err := s.rdb.SIsMember(ctx, s.groupsKey(), group).Result()
	if err != nil {
		return unavailable("count groups", err)
	}
	if !known {
		return fmt.Errorf("group %s: there are %d groups, the limit: %w", group, n, ErrGroupLimit)
	}
	return nil
}

func (s *Store) runGroupSync(ctx context.Context, group string, args []any) ([]string, error) {
	raw, err := groupSyncScript.Run(ctx, s.rdb, s.groupKeys(group), args...).StringSlice()
	if err != nil {
		switch msg := err.Error(); {
		case strings.Contains(msg, "MEMBER_NOT_FOUND"):
			return nil, fmt.Errorf("group %s member %v: %w", group, args[2], ErrMemberNotFound)
		case strings.Contains(msg, "SESSION_INVALID"):
			return nil, fmt.Errorf("group %s member %v: %w", group, args[2], ErrSessionInvalid)
		case strings.Contains(msg, "GROUP_MEMBERS_LIMIT"):
			return nil, fmt.Errorf("group %s has %d members, the limit: %w", group, s.groupLimits.Members, ErrGroupLimit)
		case strings.Contains(msg, "GROUP_PARTITIONS_LIMIT"):
			return nil, fmt.Errorf("group %s would subscribe to more than %d partitions, the limit (the partitions of every topic its members subscribe to): %w",
				group, s.groupLimits.Partitions, ErrGroupLimit)
		}
		return nil, unavailable("group "+group, err)
	}
	return raw, nil
}

func parseAssignments(raw []string) ([]Assignment, error) {
	out := make([]Assignment, 0, len(raw)/4)
	for i := 0; i+3 < len(raw); i += 4 {
		topic, p, err := splitTopicPartition(raw[i])
		if err != nil {
			return nil, err
		}
		lease, err1 := strconv.ParseInt(raw[i+1], 10, 64)
		off, err2 := strconv.ParseInt(raw[i+2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed assignment %q", raw[i:i+4])
		}
		out = append(out, Assignment{Topic: topic, Partition: p, Lease: lease, CommittedOffset: off, Revoking: raw[i+3] == "1"})
	}
	sortAssignments(out)
	return out, nil
}

func sortAssignments(as []Assignment) {
	slices.SortFunc(as, func(a, b Assignment) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
}

func splitTopicPartition(tp string) (string, int32, error) {
	i := strings.LastIndexByte(tp, '/')
	if i < 0 {
		return "", 0, fmt.Errorf("malformed group partition %q", tp)
	}
	p, err := strconv.ParseInt(tp[i+1:], 10, 32)
	if err != nil {
		return "", 0, fmt.Errorf("malformed group partition %q", tp)
	}
	return tp[:i], int32(p), nil
}

// CommitOffsets stores the offsets for member, which presents its session
// key, if the member is live at now and owns every partition under the
// lease named; if not, it stores none and fails with ErrMemberNotFound
// (the member left or expired), ErrSessionInvalid (a wrong key) or
// ErrLeaseLost. now is the group's last activity afterwards.
func (s *Store) CommitOffsets(ctx context.Context, group, member, key string, offsets []OffsetCommit, now time.Time) error {
	if len(offsets) == 0 {
		return nil
	}
	args := []any{len(offsets)}
	for _, o := range offsets {
		args = append(args, o.Topic+"/"+strconv.Itoa(int(o.Partition)), o.Lease, o.Offset)
	}
	args = append(args, now.UnixMilli(), member, sessionKeyHash(key))
	keys := []string{s.groupKey(group, "owners"), s.groupKey(group, "offsets"), s.groupKey(group, "meta"),
		s.groupKey(group, "members"), s.groupKey(group, "expiry")}
	err := commitOffsetsScript.Run(ctx, s.rdb, keys, args...).Err()
	if err != nil {
		switch msg := err.Error(); {
		case strings.Contains(msg, "LEASE_LOST"):
			return fmt.Errorf("group %s: %s: %w", group, msg[strings.Index(msg, "LEASE_LOST")+len("LEASE_LOST "):], ErrLeaseLost)
		case strings.Contains(msg, "MEMBER_NOT_FOUND"):
			return fmt.Errorf("group %s member %s: %w", group, member, ErrMemberNotFound)
		case strings.Contains(msg, "SESSION_INVALID"):
			return fmt.Errorf("group %s member %s: %w", group, member, ErrSessionInvalid)
		}
		return unavailable("commit offsets of group "+group, err)
	}
	return nil
}

// sessionKeyHash is what Redis keeps of a session key: its SHA-256, in
// hex. An empty key hashes to "", which matches no member.
func sessionKeyHash(key string) string {
	if key == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Groups returns the names of every group: those that had a member, or
// were restored, and were not deleted since.
func (s *Store) Groups(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.groupsKey()).Result()
	if err != nil {
		return nil, unavailable("list groups", err)
	}
	slices.Sort(names)
	return names, nil
}

// DescribeGroup returns the group's live members with their assignments
// and its committed offsets. It does not expire members; members whose
// session ran out are left out.
func (s *Store) DescribeGroup(ctx context.Context, group string, now time.Time) ([]Member, []GroupOffset, error) {
	var members, owners, offsets, revoking *redis.MapStringStringCmd
	var expiry *redis.ZSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		members = p.HGetAll(ctx, s.groupKey(group, "members"))
		expiry = p.ZRangeWithScores(ctx, s.groupKey(group, "expiry"), 0, -1)
		owners = p.HGetAll(ctx, s.groupKey(group, "owners"))
		offsets = p.HGetAll(ctx, s.groupKey(group, "offsets"))
		revoking = p.HGetAll(ctx, s.groupKey(group, "revoking"))
		return nil
	})
	if err != nil {
		return nil, nil, unavailable("describe group "+group, err)
	}
	expires := map[string]time.Time{}
	for _, z := range expiry.Val() {
		expires[z.Member.(string)] = time.UnixMilli(int64(z.Score))
	}
	byID := map[string]*Member{}
	var out []Member
	for id, v := range members.Val() {
		exp := expires[id]
		if !exp.After(now) {
			continue
		}
		// The key's hash, after the session timeout, is never shown.
		topics, rest, _ := strings.Cut(v, "|")
		session, _, _ := strings.Cut(rest, "|")
		ms, _ := strconv.ParseInt(session, 10, 64)
		out = append(out, Member{ID: id, Topics: strings.Split(topics, ","), SessionTimeout: time.Duration(ms) * time.Millisecond, Expires: exp})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for tp, v := range owners.Val() {
		member, lease, _ := strings.Cut(v, "|")
		m := byID[member]
		if m == nil {
			continue
		}
		topic, p, err := splitTopicPartition(tp)
		if err != nil {
			return nil, nil, err
		}
		l, _ := strconv.ParseInt(lease, 10, 64)
		off := int64(-1)
		if v, ok := offsets.Val()[tp]; ok {
			off, _ = strconv.ParseInt(v, 10, 64)
		}
		rl, _, _ := strings.Cut(revoking.Val()[tp], "|")
		m.Assignments = append(m.Assignments, Assignment{Topic: topic, Partition: p, Lease: l, CommittedOffset: off, Revoking: rl == lease})
	}
	for i := range out {
		sortAssignments(out[i].Assignments)
	}
	var offs []GroupOffset
	for tp, v := range offsets.Val() {
		topic, p, err := splitTopicPartition(tp)
		if err != nil {
			return nil, nil, err
		}
		o, _ := strconv.ParseInt(v, 10, 64)
		offs = append(offs, GroupOffset{Topic: topic, Partition: p, Offset: o})
	}
	slices.SortFunc(offs, func(a, b GroupOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out, offs, nil
}
