-- forget_offsets.lua removes committed offsets of a consumer group, each
-- only if it still holds the value the caller read (Store.ForgetGroupOffsets,
-- which the group janitor calls for the offsets of deleted topics).
--
-- KEYS[1] offsets hash prefix:{g:G}:offsets  "topic/partition" -> offset
-- ARGV[1], ARGV[2], ...: pairs of topic/partition, offset
--
-- Returns the number of offsets removed.
--
-- Invariants: an offset committed since the caller read it (the topic was
-- recreated and a member committed under it) is kept.
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i+1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
