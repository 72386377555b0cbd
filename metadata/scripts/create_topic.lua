-- create_topic.lua registers a topic's metadata (Store.CreateTopic).
--
-- KEYS[1] topic meta hash prefix:{T}:meta
-- ARGV[1] name, ARGV[2] id (incarnation), ARGV[3] partitions,
-- ARGV[4] retention_ms, ARGV[5] created_ms, ARGV[6] retention_bytes
--
-- Returns 'OK', or the error reply TOPIC_EXISTS when meta exists.
--
-- Invariants: an existing topic is never overwritten, so a topic's id and
-- partition count never change while it lives. The caller adds the name
-- to the topics set afterwards (that set has no hash tag, so it cannot be
-- in the same script on Redis Cluster).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('TOPIC_EXISTS')
end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'id', ARGV[2], 'partitions', ARGV[3],
  'retention_ms', ARGV[4], 'created_ms', ARGV[5], 'retention_bytes', ARGV[6])
return 'OK'
