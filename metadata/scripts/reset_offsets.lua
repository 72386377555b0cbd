-- reset_offsets.lua sets a consumer group's committed offsets
-- (Store.ResetGroupOffsets).
--
-- KEYS[1] expiry zset    prefix:{g:G}:expiry    member id, scored by expiry (unix ms)
-- KEYS[2] owners hash    prefix:{g:G}:owners    "topic/partition" -> "member|lease"
-- KEYS[3] offsets hash   prefix:{g:G}:offsets   "topic/partition" -> committed offset
-- KEYS[4] lease string   prefix:{g:G}:lease     last lease handed out
-- KEYS[5] meta hash      prefix:{g:G}:meta      active -> last activity (unix ms)
-- KEYS[6] revoking hash  prefix:{g:G}:revoking  "topic/partition" -> "lease|deadline"
-- KEYS[7] assigned hash  prefix:{g:G}:assigned  member id -> its partitions and leases
--
-- ARGV[1] force: '1' to reset while members are live, ARGV[2] n, then n
-- pairs: topic/partition, offset.
--
-- Returns the number of live members. Error reply GROUP_NOT_EMPTY when a
-- member's session has not expired (its expiry is after now) and force is
-- not '1'.
--
-- Invariants: all or nothing. now is Redis's TIME, as for delete_group.lua,
-- so a node whose clock runs behind cannot reset under live members. With
-- force, every reset partition that has an owner gets a new lease from
-- KEYS[4] (the owner keeps it): the owner's commits under the old lease
-- are refused from now on, so a live member cannot overwrite the reset
-- with the position it had; it learns of the new lease at its next commit
-- or heartbeat and reads again from the reset offset. A pending
-- revocation of such a partition ends with its lease, and KEYS[7] goes (it
-- holds the old leases), so the owner's next heartbeat rebalances and
-- learns the new one. A reset raises the
-- group's last activity to now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%d', now), '+inf')
if live > 0 and ARGV[1] ~= '1' then
  return redis.error_reply('GROUP_NOT_EMPTY')
end
local n = tonumber(ARGV[2])
for i = 1, n do
  local tp, off = ARGV[1 + 2*i], ARGV[2 + 2*i]
  local cur = redis.call('HGET', KEYS[2], tp)
  if cur then
    if redis.call('EXISTS', KEYS[4]) == 0 then
      redis.call('SET', KEYS[4], t[1] .. string.format('%06d', tonumber(t[2])))
    end
    local member = string.match(cur, '^(.*)|%d+$')
    redis.call('HSET', KEYS[2], tp, member .. '|' .. string.format('%d', redis.call('INCR', KEYS[4])))
    redis.call('HDEL', KEYS[6], tp)
    redis.call('DEL', KEYS[7])
  end
  redis.call('HSET', KEYS[3], tp, off)
end
if now > tonumber(redis.call('HGET', KEYS[5], 'active') or '0') then
  redis.call('HSET', KEYS[5], 'active', string.format('%d', now))
end
return live
