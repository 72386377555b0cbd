-- trim.lua removes the oldest index entries of one partition and raises its
-- log start offset past them (Store.Trim; retention and compaction call it).
--
-- KEYS[1] topic meta hash prefix:{T}:meta, KEYS[2] log start offsets
-- prefix:{T}:lso, KEYS[3] object references prefix:{T}:refs, KEYS[4]
-- stored bytes prefix:{T}:bytes, KEYS[5] the partition's index
-- prefix:{T}:idx:P, KEYS[6] objects the topic's trims left unreferenced
-- prefix:{T}:unref (a list)
-- ARGV[1] topic id (incarnation), ARGV[2] partition, ARGV[3] n, the number
-- of entries to remove (1..1000), ARGV[4] the n-th entry as the caller read
-- it, ARGV[5] the most objects KEYS[6] holds
--
-- Returns the new log start offset, or -1 when the partition's first n
-- entries are no longer what the caller read (another trim ran first): the
-- caller reads again. Error reply TOPIC_NOT_FOUND when meta is missing or
-- its id is not ARGV[1]; BAD_COUNT for n outside 1..1000.
--
-- Invariants:
-- * Work is bounded by n (at most 1000 entries), so a trim never blocks
--   Redis for long; the caller loops.
-- * Only a prefix of the index goes: offsets stay contiguous from the new
--   log start to the high watermark, and the log start never moves back.
-- * Each removed entry takes 1 off its object's count in refs (the field
--   goes at 0) and its length off its partition's bytes, the reverse of
--   commit.lua.
-- * An object whose count reaches 0 is appended to unref, which garbage
--   collection drains (Store.TakeUnreferenced) to mark it without waiting
--   for its listing of the bucket; unref keeps its oldest ARGV[5] members
--   (one that does not fit is found by the listing instead).
local id = redis.call('HGET', KEYS[1], 'id')
if not id or id ~= ARGV[1] then
  return redis.error_reply('TOPIC_NOT_FOUND')
end
local n = tonumber(ARGV[3])
if not n or n < 1 or n > 1000 then
  return redis.error_reply('BAD_COUNT')
end
local first = redis.call('ZRANGE', KEYS[5], 0, n - 1)
if #first < n or first[n] ~= ARGV[4] then
  return -1
end
local p = ARGV[2]
local unref = {}
local freed = 0
local nextOffset = 0
for i = 1, n do
  local base, count, obj, _, len = string.match(first[i], '^(%d+)|(%d+)|([^|]+)|(%d+)|(%d+)$')
  if not base then
    return redis.error_reply('MALFORMED_ENTRY ' .. first[i])
  end
  if redis.call('HINCRBY', KEYS[3], obj, -1) <= 0 then
    redis.call('HDEL', KEYS[3], obj)
    unref[#unref + 1] = obj
  end
  freed = freed + tonumber(len)
  nextOffset = tonumber(base) + tonumber(count)
end
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, n - 1)
local maxUnref = tonumber(ARGV[5])
if #unref > 0 and redis.call('LLEN', KEYS[6]) < maxUnref then
  redis.call('RPUSH', KEYS[6], unpack(unref))
  redis.call('LTRIM', KEYS[6], 0, maxUnref - 1)
end
if redis.call('HINCRBY', KEYS[4], p, -freed) <= 0 then
  redis.call('HDEL', KEYS[4], p)
end
local lso = tonumber(redis.call('HGET', KEYS[2], p) or '0')
if nextOffset > lso then
  redis.call('HSET', KEYS[2], p, nextOffset)
  lso = nextOffset
end
return lso
