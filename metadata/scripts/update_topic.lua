-- update_topic.lua changes a topic's retention (Store.UpdateTopic).
--
-- KEYS[1] topic meta hash prefix:{T}:meta
-- ARGV[1] retention_ms, ARGV[2] retention_bytes; '' leaves a field as it is
--
-- Returns 'OK', or the error reply TOPIC_NOT_FOUND when meta is missing.
--
-- Invariants: only the retention fields change; name, id and partition
-- count never do, and a deleted topic is not brought back by an update
-- racing its delete.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('TOPIC_NOT_FOUND')
end
if ARGV[1] ~= '' then
  redis.call('HSET', KEYS[1], 'retention_ms', ARGV[1])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'retention_bytes', ARGV[2])
end
return 'OK'
