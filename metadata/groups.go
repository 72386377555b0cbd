package metadata

import (
	"context"
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
//	mamba:{g:G}:members        hash   member id -> "topic,topic|session_ms"
//	mamba:{g:G}:expiry         zset   member id, scored by expiry (unix ms)
//	mamba:{g:G}:topics         hash   topic -> partition count, as members saw it
//	mamba:{g:G}:owners         hash   "topic/partition" -> "member|lease"
//	mamba:{g:G}:offsets        hash   "topic/partition" -> committed offset
//	mamba:{g:G}:lease          string last lease (fencing token) handed out
//
// Every join, heartbeat and leave first expires members whose session ran
// out, then rebalances: each topic's partitions are spread over the live
// members subscribed to it, each holding its fair share (the floor or the
// ceiling of partitions/members), keeping partitions where they are when it
// can. A partition that changes hands gets a new lease, greater than every
// lease before it; an offset commit must name the partition's current
// lease, so a member that lost a partition can never move the group's
// position.

var (
	// ErrMemberNotFound is returned for a member that left, expired, or
	// never joined.
	ErrMemberNotFound = errors.New("member not found")
	// ErrLeaseLost is returned when an offset commit names a lease that is
	// no longer the partition's current lease.
	ErrLeaseLost = errors.New("lease lost")
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
	}
}

func (s *Store) groupsKey() string { return s.prefix + ":groups" }

var groupSyncScript = redis.NewScript(`
-- KEYS: members, expiry, owners, offsets, lease, topics
-- ARGV: now_ms, action (join|heartbeat|leave), member, [topics csv, session ms, n, (topic, partitions)*n]
local now, action, member = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(dead) do
  redis.call('HDEL', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
if action == 'join' then
  redis.call('HSET', KEYS[1], member, ARGV[4] .. '|' .. ARGV[5])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
  local n = tonumber(ARGV[6])
  for i = 1, n do
    redis.call('HSET', KEYS[6], ARGV[5 + 2*i], ARGV[6 + 2*i])
  end
else
  local v = redis.call('HGET', KEYS[1], member)
  if not v then
    return redis.error_reply('MEMBER_NOT_FOUND')
  end
  if action == 'heartbeat' then
    redis.call('ZADD', KEYS[2], now + tonumber(string.match(v, '|(%d+)$')), member)
  else
    redis.call('HDEL', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
  end
end

-- Who subscribes to what.
local subs = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local m, topics = raw[i], string.match(raw[i+1], '^(.*)|')
  for t in string.gmatch(topics, '[^,]+') do
    subs[t] = subs[t] or {}
    table.insert(subs[t], m)
  end
end
local owners = {}
raw = redis.call('HGETALL', KEYS[3])
for i = 1, #raw, 2 do
  local m, lease = string.match(raw[i+1], '^(.*)|(%d+)$')
  owners[raw[i]] = {member = m, lease = lease}
end

-- Rebalance each topic over its subscribers.
raw = redis.call('HGETALL', KEYS[6])
for i = 1, #raw, 2 do
  local topic, n = raw[i], tonumber(raw[i+1])
  local ms = subs[topic]
  if not ms then
    for p = 0, n - 1 do
      redis.call('HDEL', KEYS[3], topic .. '/' .. p)
    end
    redis.call('HDEL', KEYS[6], topic)
  else
    local owned = {}
    for _, m in ipairs(ms) do owned[m] = 0 end
    for p = 0, n - 1 do
      local o = owners[topic .. '/' .. p]
      if o and owned[o.member] then owned[o.member] = owned[o.member] + 1 end
    end
    table.sort(ms, function(a, b)
      if owned[a] ~= owned[b] then return owned[a] > owned[b] end
      return a < b
    end)
    local base, extra = math.floor(n / #ms), n % #ms
    local quota, kept = {}, {}
    for j, m in ipairs(ms) do
      quota[m] = base + ((j <= extra) and 1 or 0)
      kept[m] = 0
    end
    local free = {}
    for p = 0, n - 1 do
      local tp = topic .. '/' .. p
      local o = owners[tp]
      if o and quota[o.member] and kept[o.member] < quota[o.member] then
        kept[o.member] = kept[o.member] + 1
      else
        table.insert(free, tp)
      end
    end
    for _, tp in ipairs(free) do
      local best = nil
      for _, m in ipairs(ms) do
        if kept[m] < quota[m] and (best == nil or kept[m] < kept[best]) then best = m end
      end
      local lease = redis.call('INCR', KEYS[5])
      redis.call('HSET', KEYS[3], tp, best .. '|' .. lease)
      owners[tp] = {member = best, lease = tostring(lease)}
      kept[best] = kept[best] + 1
    end
  end
end

if action == 'leave' then
  return {}
end
local out = {}
raw = redis.call('HGETALL', KEYS[3])
for i = 1, #raw, 2 do
  local m, lease = string.match(raw[i+1], '^(.*)|(%d+)$')
  if m == member then
    local off = redis.call('HGET', KEYS[4], raw[i]) or '-1'
    table.insert(out, raw[i])
    table.insert(out, lease)
    table.insert(out, off)
  end
end
return out
`)

var commitOffsetsScript = redis.NewScript(`
-- KEYS: owners, offsets; ARGV: n, then (topic/partition, lease, offset)*n
local n = tonumber(ARGV[1])
for i = 1, n do
  local tp, lease = ARGV[2 + 3*(i-1)], ARGV[3 + 3*(i-1)]
  local cur = redis.call('HGET', KEYS[1], tp)
  if not cur or string.match(cur, '|(%d+)$') ~= lease then
    return redis.error_reply('LEASE_LOST ' .. tp)
  end
end
for i = 1, n do
  redis.call('HSET', KEYS[2], ARGV[2 + 3*(i-1)], ARGV[4 + 3*(i-1)])
end
return 'OK'
`)

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

// JoinGroup adds a member subscribed to topics (each with its partition
// count) and returns its assignments after the rebalance.
func (s *Store) JoinGroup(ctx context.Context, group, member string, topics []Topic, session time.Duration, now time.Time) ([]Assignment, error) {
	if len(topics) == 0 {
		return nil, errors.New("join group: no topics")
	}
	names := make([]string, len(topics))
	args := []any{now.UnixMilli(), "join", member, "", session.Milliseconds(), len(topics)}
	for i, t := range topics {
		names[i] = t.Name
		args = append(args, t.Name, t.Partitions)
	}
	args[3] = strings.Join(names, ",")
	as, err := s.groupSync(ctx, group, args)
	if err != nil {
		return nil, err
	}
	if err := s.rdb.SAdd(ctx, s.groupsKey(), group).Err(); err != nil {
		return nil, unavailable("join group "+group, err)
	}
	return as, nil
}

// Heartbeat extends the member's session and returns its assignments
// after the rebalance. A member that is gone gets ErrMemberNotFound.
func (s *Store) Heartbeat(ctx context.Context, group, member string, now time.Time) ([]Assignment, error) {
	return s.groupSync(ctx, group, []any{now.UnixMilli(), "heartbeat", member})
}

// LeaveGroup removes the member and hands its partitions to the others at
// once.
func (s *Store) LeaveGroup(ctx context.Context, group, member string, now time.Time) error {
	_, err := s.groupSync(ctx, group, []any{now.UnixMilli(), "leave", member})
	return err
}

func (s *Store) groupSync(ctx context.Context, group string, args []any) ([]Assignment, error) {
	raw, err := groupSyncScript.Run(ctx, s.rdb, s.groupKeys(group), args...).StringSlice()
	if err != nil {
		if strings.Contains(err.Error(), "MEMBER_NOT_FOUND") {
			return nil, fmt.Errorf("group %s member %v: %w", group, args[2], ErrMemberNotFound)
		}
		return nil, unavailable("group "+group, err)
	}
	return parseAssignments(raw)
}

func parseAssignments(raw []string) ([]Assignment, error) {
	out := make([]Assignment, 0, len(raw)/3)
	for i := 0; i+2 < len(raw); i += 3 {
		topic, p, err := splitTopicPartition(raw[i])
		if err != nil {
			return nil, err
		}
		lease, err1 := strconv.ParseInt(raw[i+1], 10, 64)
		off, err2 := strconv.ParseInt(raw[i+2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed assignment %q", raw[i:i+3])
		}
		out = append(out, Assignment{Topic: topic, Partition: p, Lease: lease, CommittedOffset: off})
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

// CommitOffsets stores the offsets if every lease is still current; if any
// is not, it stores none and fails with ErrLeaseLost.
func (s *Store) CommitOffsets(ctx context.Context, group string, offsets []OffsetCommit) error {
	if len(offsets) == 0 {
		return nil
	}
	args := []any{len(offsets)}
	for _, o := range offsets {
		args = append(args, o.Topic+"/"+strconv.Itoa(int(o.Partition)), o.Lease, o.Offset)
	}
	err := commitOffsetsScript.Run(ctx, s.rdb, []string{s.groupKey(group, "owners"), s.groupKey(group, "offsets")}, args...).Err()
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "LEASE_LOST") {
			return fmt.Errorf("group %s: %s: %w", group, msg[strings.Index(msg, "LEASE_LOST")+len("LEASE_LOST "):], ErrLeaseLost)
		}
		return unavailable("commit offsets of group "+group, err)
	}
	return nil
}

// Groups returns the names of every group that ever had a member.
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
	var members, owners, offsets *redis.MapStringStringCmd
	var expiry *redis.ZSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		members = p.HGetAll(ctx, s.groupKey(group, "members"))
		expiry = p.ZRangeWithScores(ctx, s.groupKey(group, "expiry"), 0, -1)
		owners = p.HGetAll(ctx, s.groupKey(group, "owners"))
		offsets = p.HGetAll(ctx, s.groupKey(group, "offsets"))
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
		topics, session, _ := strings.Cut(v, "|")
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
		m.Assignments = append(m.Assignments, Assignment{Topic: topic, Partition: p, Lease: l, CommittedOffset: off})
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
