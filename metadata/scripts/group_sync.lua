-- group_sync.lua is the consumer group coordinator: one join, heartbeat or
-- leave of a member, followed by a rebalance (Store.Join, Store.Sync,
-- Store.LeaveGroup).
--
-- KEYS[1] members hash  prefix:{g:G}:members  member id ->
--                                             "topic,topic|session_ms|key_sha256"
-- KEYS[2] expiry zset   prefix:{g:G}:expiry   member id, scored by expiry (unix ms)
-- KEYS[3] owners hash   prefix:{g:G}:owners   "topic/partition" -> "member|lease"
-- KEYS[4] offsets hash  prefix:{g:G}:offsets  "topic/partition" -> committed offset
-- KEYS[5] lease string  prefix:{g:G}:lease    last lease (fencing token) handed out
-- KEYS[6] topics hash   prefix:{g:G}:topics   topic -> partition count, as members saw it
-- KEYS[7] meta hash     prefix:{g:G}:meta     active -> last activity (unix ms),
--                                             offset_reset -> earliest|latest
-- KEYS[8] revoking hash prefix:{g:G}:revoking "topic/partition" -> "lease|deadline":
--                                             the owner under that lease must
--                                             release the partition by the
--                                             deadline (unix ms)
-- KEYS[9] assigned hash prefix:{g:G}:assigned member id ->
--                                             "W;topic/partition|lease|R,...":
--                                             each live member's partitions
--                                             as the last rebalance left them
--                                             (R 1 when revoking) and whether
--                                             it waits (W); '' -> the earliest
--                                             pending revocation deadline
--
-- ARGV[1] now (unix ms, the caller's clock), ARGV[2] action: join,
-- heartbeat or leave, ARGV[3] member id; for join also ARGV[4] the
-- member's topics, comma-separated, ARGV[5] session timeout ms, ARGV[6] n,
-- then n pairs: topic, partition count, then the group's offset reset
-- policy ('' keeps the group's, which is earliest when never set), then
-- the most members the group may have and the most partitions its topics
-- may hold in all (a join over either is refused, with error reply
-- GROUP_MEMBERS_LIMIT or GROUP_PARTITIONS_LIMIT, before anything changes;
-- a member joining again is not counted twice), then the SHA-256 (hex) of
-- the member's session key; for heartbeat and leave ARGV[4] the SHA-256
-- (hex) of the session key presented, and for heartbeat ARGV[5] n, then n
-- pairs: topic/partition, lease of partitions the member releases.
--
-- Returns, for join and heartbeat, the member's assignments after the
-- rebalance as a flat array of quadruples: topic/partition, lease,
-- committed offset ('-1' when none), revoking ('1' when the member must
-- release the partition, else '0'); then waiting ('1' when the member is
-- below its share of a topic because partitions it is to get are still
-- revoking from others, else '0'); a join's followed by one more
-- element, the group's offset reset policy; for leave an empty array.
-- Error reply MEMBER_NOT_FOUND for a heartbeat or leave of a member that
-- is not in the group (it left, expired, or never joined), SESSION_INVALID
-- for one whose key hash is not the member's (or is empty, or the member
-- joined before keys existed); expired members are still removed then,
-- but nothing else changes.
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
-- * Cooperative hand-over: a partition never goes from one live member to
--   another in one step. When the rebalance takes a partition from a live
--   owner, the owner keeps it, under its lease, marked revoking (KEYS[8]),
--   and nobody else gets it. It becomes free only when the owner releases
--   it (a heartbeat naming it with its lease), leaves, expires, or lets
--   the deadline pass (now plus the owner's session timeout, set once when
--   the revocation starts); a free partition goes to a member below its
--   share in the same call. A revoking partition whose owner's share
--   allows it again (another member left) is simply no longer revoking.
--   So two live members never own one partition, and a member that was
--   told to release has committed what it processed before the next owner
--   reads from the committed offset.
-- * A partition that changes hands gets a new lease from INCR KEYS[5], so
--   every lease is greater than every lease before it. Offsets are
--   committed only under the current lease (commit_offsets.lua), which
--   fences a member that lost a partition; a revoking partition keeps its
--   owner's lease until it is released.
-- * A counter that does not exist yet (a new group, or one deleted or
--   expired and created again) starts at Redis's TIME in microseconds, so
--   a new incarnation's leases are above every lease of an earlier one
--   (as long as that one handed out fewer leases than microseconds passed
--   since it was created, and Redis's clock did not step back): a zombie
--   member of a deleted group cannot commit into its successor. Leases are
--   built as strings (string.format '%d'): Lua 5.1 prints numbers of more
--   than 14 digits in exponent form.
-- * Who owns what does not depend on hash iteration order: members are
--   sorted by (partitions kept, descending; id), topics by name, and
--   partitions walked in order.
-- * The index: KEYS[9] is what the last rebalance left, and exists only
--   while nothing changed since. Removing an expired member deletes it
--   (so does an offset reset that changes a lease, reset_offsets.lua);
--   every rebalance writes it anew. A heartbeat that expires nobody,
--   releases nothing, and comes before the earliest revocation deadline
--   would change no ownership, so it skips the rebalance and answers from
--   the member's entry: O(the member's partitions), whatever the group's
--   size. That is every heartbeat of a settled group, and, while
--   partitions are revoking, those of the members that wait or are not
--   involved.
-- * Bounded work otherwise: a rebalance (every join and leave, a
--   release, and a heartbeat after a member expired or a deadline passed)
--   reads the group's hashes once, walks each topic's partitions a fixed
--   number of times and hands free partitions out through a heap of the
--   members below their share: O(partitions + members x log members +
--   free partitions x log members).
local now, action, member = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, m in ipairs(dead) do
  redis.call('HDEL', KEYS[1], m)
  redis.call('ZREM', KEYS[2], m)
end
if #dead > 0 then
  redis.call('DEL', KEYS[9])
end
local policy = nil
local sessions = {}
if action == 'join' then
  local n = tonumber(ARGV[6])
  local maxMembers, maxParts = tonumber(ARGV[8 + 2*n]), tonumber(ARGV[9 + 2*n])
  local keyHash = ARGV[10 + 2*n]
  if not keyHash or not string.match(keyHash, '^%x+$') then
    return redis.error_reply('SESSION_INVALID')
  end
  if maxMembers and redis.call('HEXISTS', KEYS[1], member) == 0 and redis.call('HLEN', KEYS[1]) >= maxMembers then
    return redis.error_reply('GROUP_MEMBERS_LIMIT')
  end
  if maxParts then
    -- The group's topics after this join: those the other live members
    -- subscribe to (members that expired were removed above, so their
    -- topics do not count), at the counts of KEYS[6], and the joiner's,
    -- at its own counts.
    local known, counts, total = {}, {}, 0
    local raw = redis.call('HGETALL', KEYS[6])
    for i = 1, #raw, 2 do known[raw[i]] = tonumber(raw[i+1]) end
    raw = redis.call('HGETALL', KEYS[1])
    for i = 1, #raw, 2 do
      if raw[i] ~= member then
        for t in string.gmatch(string.match(raw[i+1], '^[^|]*'), '[^,]+') do
          counts[t] = known[t] or 0
        end
      end
    end
    for i = 1, n do counts[ARGV[5 + 2*i]] = tonumber(ARGV[6 + 2*i]) end
    for _, c in pairs(counts) do total = total + c end
    if total > maxParts then
      return redis.error_reply('GROUP_PARTITIONS_LIMIT')
    end
  end
  local reset = ARGV[7 + 2*n]
  if reset and reset ~= '' then
    redis.call('HSET', KEYS[7], 'offset_reset', reset)
  end
  policy = redis.call('HGET', KEYS[7], 'offset_reset') or 'earliest'
  redis.call('HSET', KEYS[1], member, ARGV[4] .. '|' .. ARGV[5] .. '|' .. keyHash)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), member)
  for i = 1, n do
    redis.call('HSET', KEYS[6], ARGV[5 + 2*i], ARGV[6 + 2*i])
  end
else
  local v = redis.call('HGET', KEYS[1], member)
  if not v then
    return redis.error_reply('MEMBER_NOT_FOUND')
  end
  local session, stored = string.match(v, '^[^|]*|(%d+)|?(%x*)$')
  if stored == nil or stored == '' or stored ~= ARGV[4] then
    return redis.error_reply('SESSION_INVALID')
  end
  if action == 'heartbeat' then
    redis.call('ZADD', KEYS[2], now + tonumber(session), member)
    -- Releases: a partition the member owns under the lease named and
    -- was told to release becomes free.
    local n = tonumber(ARGV[5] or '0') or 0
    for i = 1, n do
      local tp, lease = ARGV[4 + 2*i], ARGV[5 + 2*i]
      local r = redis.call('HGET', KEYS[8], tp)
      if r and string.match(r, '^(%d+)|') == lease and redis.call('HGET', KEYS[3], tp) == member .. '|' .. lease then
        redis.call('HDEL', KEYS[3], tp)
        redis.call('HDEL', KEYS[8], tp)
      end
    end
  else
    redis.call('HDEL', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
  end
end
if now > tonumber(redis.call('HGET', KEYS[7], 'active') or '0') then
  redis.call('HSET', KEYS[7], 'active', now)
end

-- HSETs the field, value pairs of fields into key, 500 pairs a call
-- (unpack is bounded by Lua's C stack).
local function hsetAll(key, fields)
  for from = 1, #fields, 1000 do
    redis.call('HSET', key, unpack(fields, from, math.min(from + 999, #fields)))
  end
end

-- The member's partitions as the answer lists them, from its
-- tp|lease|revoking entries.
local function answer(entries)
  local out, tps = {}, {}
  for j, e in ipairs(entries) do tps[j] = string.match(e, '^(.*)|%d+|[01]$') end
  local offs = {}
  -- HMGET answers nil for a missing field; keep the positions.
  for from = 1, #tps, 1000 do
    local r = redis.call('HMGET', KEYS[4], unpack(tps, from, math.min(from + 999, #tps)))
    for k = 1, math.min(1000, #tps - from + 1) do offs[from + k - 1] = r[k] end
  end
  for j, e in ipairs(entries) do
    local lease, rev = string.match(e, '|(%d+)|([01])$')
    table.insert(out, tps[j])
    table.insert(out, lease)
    table.insert(out, offs[j] or '-1')
    table.insert(out, rev)
  end
  return out
end

-- Nothing changed since the last rebalance (KEYS[9] exists), this
-- heartbeat releases nothing and no revocation deadline has passed: the
-- rebalance would change nothing, so the member's entry is the answer.
if action == 'heartbeat' and (tonumber(ARGV[5]) or 0) == 0 then
  local idx = redis.call('HMGET', KEYS[9], member, '')
  if idx[1] and (not idx[2] or tonumber(idx[2]) > now) then
    local w, list = string.match(idx[1], '^([01]);(.*)$')
    local entries = {}
    for e in string.gmatch(list, '[^,]+') do table.insert(entries, e) end
    local out = answer(entries)
    table.insert(out, w)
    return out
  end
end

-- Who subscribes to what.
local subs = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local m, topics, session = raw[i], string.match(raw[i+1], '^([^|]*)|(%d+)')
  sessions[m] = tonumber(session)
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
-- Revocations in progress; an entry whose lease is no longer the owner's
-- is stale and goes.
raw = redis.call('HGETALL', KEYS[8])
for i = 1, #raw, 2 do
  local lease, deadline = string.match(raw[i+1], '^(%d+)|(%d+)$')
  local o = owners[raw[i]]
  if o and o.lease == lease then
    o.deadline = tonumber(deadline)
  else
    redis.call('HDEL', KEYS[8], raw[i])
  end
end

local function newLease()
  if redis.call('EXISTS', KEYS[5]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[5], t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return string.format('%d', redis.call('INCR', KEYS[5]))
end

-- A heap of the members below their share, least held first (ties: the
-- earlier in the sorted members), for handing out free partitions.
local function heapLess(h, a, b)
  if h.kept[h.ms[a]] ~= h.kept[h.ms[b]] then return h.kept[h.ms[a]] < h.kept[h.ms[b]] end
  return a < b
end
local function heapPush(h, j)
  table.insert(h, j)
  local c = #h
  while c > 1 do
    local par = math.floor(c / 2)
    if not heapLess(h, h[c], h[par]) then break end
    h[c], h[par] = h[par], h[c]
    c = par
  end
end
local function heapPop(h)
  local top = h[1]
  h[1] = h[#h]
  table.remove(h)
  local c = 1
  while true do
    local l, r, m = 2 * c, 2 * c + 1, c
    if l <= #h and heapLess(h, h[l], h[m]) then m = l end
    if r <= #h and heapLess(h, h[r], h[m]) then m = r end
    if m == c then break end
    h[c], h[m] = h[m], h[c]
    c = m
  end
  return top
end

-- Rebalance each topic over its subscribers. waiting: the member is
-- below its share of some topic, until revoking partitions are released.
local waits = {} -- member -> true when below its share of a topic
local held = {} -- member -> its tp|lease|revoking entries, after the rebalance
local topics, counts = {}, {}
raw = redis.call('HGETALL', KEYS[6])
for i = 1, #raw, 2 do
  table.insert(topics, raw[i])
  counts[raw[i]] = tonumber(raw[i+1])
end
table.sort(topics)
for _, topic in ipairs(topics) do
  local n = counts[topic]
  local ms = subs[topic]
  local tps = {}
  for p = 0, n - 1 do tps[p] = topic .. '/' .. p end
  if not ms then
    for p = 0, n - 1 do
      redis.call('HDEL', KEYS[3], tps[p])
      redis.call('HDEL', KEYS[8], tps[p])
      owners[tps[p]] = nil
    end
    redis.call('HDEL', KEYS[6], topic)
  else
    local owned = {}
    for _, m in ipairs(ms) do owned[m] = 0 end
    for p = 0, n - 1 do
      local o = owners[tps[p]]
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
    -- Keep partitions that are not revoking first, then revoking ones
    -- the owner's share allows again; the rest of a live owner's
    -- partitions are revoked, or stay revoking until their deadline.
    local was, free = {}, {}
    for p = 0, n - 1 do
      local o = owners[tps[p]]
      was[p] = o ~= nil and o.deadline ~= nil
    end
    for pass = 1, 2 do
      for p = 0, n - 1 do
        local tp = tps[p]
        local o = owners[tp]
        if not o then
          if pass == 2 then free[p] = true end
        elseif was[p] == (pass == 2) then
          local live = quota[o.member] ~= nil and (o.deadline == nil or o.deadline > now)
          if live and kept[o.member] < quota[o.member] then
            kept[o.member] = kept[o.member] + 1
            if o.deadline then
              redis.call('HDEL', KEYS[8], tp)
              o.deadline = nil
            end
          elseif live then
            if not o.deadline then
              o.deadline = now + sessions[o.member]
              redis.call('HSET', KEYS[8], tp, o.lease .. '|' .. string.format('%d', o.deadline))
            end
          else
            redis.call('HDEL', KEYS[8], tp)
            o.deadline = nil
            free[p] = true
          end
        end
      end
    end
    -- Free partitions go to members below their share; there are at
    -- least as many open places as free partitions, since revoking ones
    -- count towards no share.
    local h = {ms = ms, kept = kept}
    for j, m in ipairs(ms) do
      if kept[m] < quota[m] then heapPush(h, j) end
    end
    for p = 0, n - 1 do
      if free[p] then
        local tp = tps[p]
        local j = heapPop(h)
        local best = ms[j]
        local lease = newLease()
        redis.call('HSET', KEYS[3], tp, best .. '|' .. lease)
        owners[tp] = {member = best, lease = lease}
        kept[best] = kept[best] + 1
        if kept[best] < quota[best] then heapPush(h, j) end
      end
    end
    for p = 0, n - 1 do
      local o = owners[tps[p]]
      if o then
        held[o.member] = held[o.member] or {}
        table.insert(held[o.member], tps[p] .. '|' .. o.lease .. '|' .. (o.deadline and '1' or '0'))
      end
    end
    for _, m in ipairs(ms) do
      if kept[m] < quota[m] then waits[m] = true end
    end
  end
end

-- The index for the heartbeats that follow: every live member's
-- partitions and whether it waits, and under '' the earliest revocation
-- deadline, when one is pending.
redis.call('DEL', KEYS[9])
local fields, first = {}, nil
for m, _ in pairs(sessions) do
  table.insert(fields, m)
  table.insert(fields, (waits[m] and '1;' or '0;') .. table.concat(held[m] or {}, ','))
end
for _, o in pairs(owners) do
  if o.deadline and (not first or o.deadline < first) then first = o.deadline end
end
if first then
  table.insert(fields, '')
  table.insert(fields, string.format('%d', first))
end
hsetAll(KEYS[9], fields)

if action == 'leave' then
  return {}
end
local out = answer(held[member] or {})
table.insert(out, waits[member] and '1' or '0')
if policy then
  table.insert(out, policy)
end
return out
