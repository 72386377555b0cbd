-- commit_offsets.lua stores a consumer group's offsets under their leases
-- (Store.CommitOffsets).
--
-- KEYS[1] owners hash  prefix:{g:G}:owners   "topic/partition" -> "member|lease"
-- KEYS[2] offsets hash prefix:{g:G}:offsets  "topic/partition" -> offset
-- KEYS[3] meta hash    prefix:{g:G}:meta     active -> last activity (unix ms)
-- ARGV[1] n, then n triples: topic/partition, lease, offset, then now
-- (unix ms, the caller's clock)
--
-- Returns 'OK', or the error reply "LEASE_LOST topic/partition" for the
-- first partition whose current lease is not the one named (or that has no
-- owner).
--
-- Invariants: all or nothing. Every lease is checked before any offset is
-- written, so a member that lost one partition of the commit moves none of
-- the group's positions; a fenced member can never move an offset. A
-- commit that stores offsets raises KEYS[3] active to now (never lowers it).
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
local now = tonumber(ARGV[2 + 3*n])
if now > tonumber(redis.call('HGET', KEYS[3], 'active') or '0') then
  redis.call('HSET', KEYS[3], 'active', now)
end
return 'OK'
