-- commit_offsets.lua stores a consumer group's offsets under their leases
-- (Store.CommitOffsets).
--
-- KEYS[1] owners hash  prefix:{g:G}:owners   "topic/partition" -> "member|lease"
-- KEYS[2] offsets hash prefix:{g:G}:offsets  "topic/partition" -> offset
-- KEYS[3] meta hash    prefix:{g:G}:meta     active -> last activity (unix ms)
-- KEYS[4] members hash prefix:{g:G}:members  member id -> "topics|session_ms|key_sha256"
-- KEYS[5] expiry zset  prefix:{g:G}:expiry   member id, scored by expiry (unix ms)
-- ARGV[1] n, then n triples: topic/partition, lease, offset, then now
-- (unix ms, the caller's clock), the committing member's id and the
-- SHA-256 (hex) of the session key it presents
--
-- Returns 'OK', or an error reply: MEMBER_NOT_FOUND when the member is not
-- in the group or its expiry is at or before now, SESSION_INVALID when the
-- key hash is not the member's, "LEASE_LOST topic/partition" for the first
-- partition the member does not own under the lease named (it has another
-- lease, another owner, or none).
--
-- Invariants: all or nothing. The member and every lease are checked
-- before any offset is written, so a member that lost one partition of
-- the commit moves none of the group's positions; a fenced member, a
-- caller without the member's key, or a member whose session ran out can
-- never move an offset. A commit that stores offsets raises KEYS[3]
-- active to now (never lowers it). Work is O(n).
local n = tonumber(ARGV[1])
local now, member, keyHash = tonumber(ARGV[2 + 3*n]), ARGV[3 + 3*n], ARGV[4 + 3*n]
local v = redis.call('HGET', KEYS[4], member)
local exp = tonumber(redis.call('ZSCORE', KEYS[5], member) or '0')
if not v or exp <= now then
  return redis.error_reply('MEMBER_NOT_FOUND')
end
local stored = string.match(v, '^[^|]*|%d+|?(%x*)$')
if stored == nil or stored == '' or stored ~= keyHash then
  return redis.error_reply('SESSION_INVALID')
end
for i = 1, n do
  local tp, lease = ARGV[2 + 3*(i-1)], ARGV[3 + 3*(i-1)]
  if redis.call('HGET', KEYS[1], tp) ~= member .. '|' .. lease then
    return redis.error_reply('LEASE_LOST ' .. tp)
  end
end
for i = 1, n do
  redis.call('HSET', KEYS[2], ARGV[2 + 3*(i-1)], ARGV[4 + 3*(i-1)])
end
if now > tonumber(redis.call('HGET', KEYS[3], 'active') or '0') then
  redis.call('HSET', KEYS[3], 'active', now)
end
return 'OK'
