-- group_sync.lua is the consumer group coordinator: one join, heartbeat or
-- leave of a member, followed by a rebalance (Store.JoinGroup,
-- Store.Heartbeat, Store.LeaveGroup).
--
-- KEYS[1] members hash  prefix:{g:G}:members  member id -> "topic,topic|session_ms"
-- KEYS[2] expiry zset   prefix:{g:G}:expiry   member id, scored by expiry (unix ms)
-- KEYS[3] owners hash   prefix:{g:G}:owners   "topic/partition" -> "member|lease"
-- KEYS[4] offsets hash  prefix:{g:G}:offsets  "topic/partition" -> committed offset
-- KEYS[5] lease string  prefix:{g:G}:lease    last lease (fencing token) handed out
-- KEYS[6] topics hash   prefix:{g:G}:topics   topic -> partition count, as members saw it
-- KEYS[7] meta hash     prefix:{g:G}:meta     active -> last activity (unix ms),
--                                             offset_reset -> earliest|latest
--
-- ARGV[1] now (unix ms, the caller's clock), ARGV[2] action: join,
-- heartbeat or leave, ARGV[3] member id; for join also ARGV[4] the
-- member's topics, comma-separated, ARGV[5] session timeout ms, ARGV[6] n,
-- then n pairs: topic, partition count, then the group's offset reset
-- policy ('' keeps the group's, which is earliest when never set).
--
-- Returns, for join and heartbeat, the member's assignments after the
-- rebalance as a flat array of triples: topic/partition, lease, committed
-- offset ('-1' when none), a join's followed by one more element, the
-- group's offset reset policy; for leave an empty array. Error reply
-- MEMBER_NOT_FOUND for a heartbeat or leave of a member that is not in the
-- group (it left, expired, or never joined); expired members are still
-- removed then, but nothing is rebalanced.
--
-- Invariants:
-- * Every call that finds its member (or joins) raises KEYS[7] active to
--   now (never lowers it: nodes' clocks differ), which is what the group
--   janitor measures idleness from.
-- * Members whose expiry is at or before now are removed first, so they
--   hold nothing after the call.
-- * Each topic's partitions are spread over the live members subscribed to
--   it, each holding its fair share (the floor or the ceiling of
--   partitions/members); a partition stays with its owner when the owner's
--   share allows. A topic nobody subscribes to any more loses its owners
--   and its entry in KEYS[6]; its offsets stay.
-- * A partition that changes hands gets a new lease from INCR KEYS[5], so
--   every lease is greater than every lease before it. Offsets are
--   committed only under the current lease (commit_offsets.lua), which
--   fences a member that lost a partition.
-- * A counter that does not exist yet (a new group, or one deleted or
--   expired and created again) starts at Redis's TIME in microseconds, so
--   a new incarnation's leases are above every lease of an earlier one
--   (as long as that one handed out fewer leases than microseconds passed
--   since it was created, and Redis's clock did not step back): a zombie
--   member of a deleted group cannot commit into its successor. Leases are
--   built as strings (string.format '%d'): Lua 5.1 prints numbers of more
--   than 14 digits in exponent form.
-- * Who owns what does not depend on hash iteration order: members are
--   sorted by (partitions kept, descending; id) and partitions walked in
--   order. Only the numbering of new leases follows the order of KEYS[6].
local now, action, member = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(dead) do
  redis.call('HDEL', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
local policy = nil
if action == 'join' then
  local n = tonumber(ARGV[6])
  local reset = ARGV[7 + 2*n]
  if reset and reset ~= '' then
    redis.call('HSET', KEYS[7], 'offset_reset', reset)
  end
  policy = redis.call('HGET', KEYS[7], 'offset_reset') or 'earliest'
  redis.call('HSET', KEYS[1], member, ARGV[4] .. '|' .. ARGV[5])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
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
if now > tonumber(redis.call('HGET', KEYS[7], 'active') or '0') then
  redis.call('HSET', KEYS[7], 'active', now)
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
      if redis.call('EXISTS', KEYS[5]) == 0 then
        local t = redis.call('TIME')
        redis.call('SET', KEYS[5], t[1] .. string.format('%06d', tonumber(t[2])))
      end
      local lease = string.format('%d', redis.call('INCR', KEYS[5]))
      redis.call('HSET', KEYS[3], tp, best .. '|' .. lease)
      owners[tp] = {member = best, lease = lease}
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
if policy then
  table.insert(out, policy)
end
return out
