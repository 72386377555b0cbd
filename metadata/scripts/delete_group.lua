-- delete_group.lua deletes a consumer group that has no live member
-- (Store.DeleteGroup, and Store.ExpireGroup for the group janitor).
--
-- KEYS[1] members hash  prefix:{g:G}:members
-- KEYS[2] expiry zset   prefix:{g:G}:expiry   member id, scored by expiry (unix ms)
-- KEYS[3] owners hash   prefix:{g:G}:owners
-- KEYS[4] offsets hash  prefix:{g:G}:offsets
-- KEYS[5] lease string  prefix:{g:G}:lease
-- KEYS[6] topics hash   prefix:{g:G}:topics
-- KEYS[7] meta hash     prefix:{g:G}:meta     active -> last activity (unix ms)
-- KEYS[8] revoking hash prefix:{g:G}:revoking
-- KEYS[9] assigned hash prefix:{g:G}:assigned
--
-- ARGV[1] '' to delete whatever the group's age (an API delete), or a
-- retention (ms): delete only if the group's last activity is at or before
-- now minus the retention (expiry). now is Redis's TIME (unix ms), not a
-- node's clock, so a node whose clock runs ahead cannot delete a group
-- whose members are live (their session expiries are set by the nodes
-- serving them, and drift with those nodes' clocks only).
--
-- Returns 'DELETED', or 'KEPT' when the group was active within the
-- retention or had no recorded activity (then now is recorded, so that a group from
-- before activity was tracked, or a restored one, expires a retention
-- after it was first seen). Error replies: GROUP_NOT_FOUND when none of
-- the keys exists, GROUP_NOT_EMPTY when a member's session has not expired
-- (its expiry is after now).
--
-- Invariants: a group with a live member is never deleted; the keys go
-- with UNLINK, so the main thread does O(1) work per key however many
-- offsets the group holds. The groups set (no hash tag) is the caller's
-- to update.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local retention = ARGV[1]
if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]) == 0 then
  return redis.error_reply('GROUP_NOT_FOUND')
end
if redis.call('ZCOUNT', KEYS[2], '(' .. string.format('%d', now), '+inf') > 0 then
  return redis.error_reply('GROUP_NOT_EMPTY')
end
if retention ~= '' then
  local active = redis.call('HGET', KEYS[7], 'active')
  if not active then
    redis.call('HSET', KEYS[7], 'active', string.format('%d', now))
    return 'KEPT'
  end
  if tonumber(active) > now - tonumber(retention) then
    return 'KEPT'
  end
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
return 'DELETED'
