-- delete_topic.lua removes a topic's metadata, offsets and index
-- (Store.DeleteTopic).
--
-- KEYS[1] topic meta hash prefix:{T}:meta, KEYS[2] high watermarks
-- prefix:{T}:hw, KEYS[3] log start offsets prefix:{T}:lso, KEYS[4] object
-- references prefix:{T}:refs, KEYS[5] stored bytes prefix:{T}:bytes,
-- KEYS[6] objects trims left unreferenced prefix:{T}:unref
-- ARGV[1] index key prefix prefix:{T}:idx: (the partition number is
-- appended; the keys share KEYS[1]'s hash tag)
--
-- Returns the topic's partition count, or the error reply TOPIC_NOT_FOUND
-- when meta is missing.
--
-- Invariants: meta goes first in the same script as the rest, so a commit
-- either runs before the delete (and is deleted with it) or finds no meta
-- and fails with TOPIC_NOT_FOUND. Keys are UNLINKed, so Redis frees a
-- large index in a background thread and the script's own work is one
-- command per partition (at most MaxPartitions). Commit markers and idempotency records
-- are left to expire (idempotency records name the topic's id, so a new
-- incarnation of the topic does not see them).
local n = tonumber(redis.call('HGET', KEYS[1], 'partitions'))
if not n then
  return redis.error_reply('TOPIC_NOT_FOUND')
end
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for p = 0, n - 1 do
  redis.call('UNLINK', ARGV[1] .. p)
end
return n
