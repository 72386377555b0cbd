-- commit.lua indexes one chunk's batches of one topic (Store.Commit and
-- Store.CommitChunks).
--
-- KEYS[1]         topic meta hash          prefix:{T}:meta
-- KEYS[2]         high watermarks hash     prefix:{T}:hw
-- KEYS[3]         log start offsets hash   prefix:{T}:lso (unused; keeps all topic keys declared)
-- KEYS[4]         chunk commit marker      prefix:{T}:chunk:ID
-- KEYS[5]         object references hash   prefix:{T}:refs
-- KEYS[6]         stored bytes hash        prefix:{T}:bytes
-- then for batch i (1-based):
-- KEYS[6+2i-1]    index zset of its partition           prefix:{T}:idx:P
-- KEYS[6+2i]      its idempotency record, or the unused placeholder
--                 prefix:{T}:idem-none when it has no key
--
-- ARGV[1] topic id (incarnation), ARGV[2] chunk id, ARGV[3] marker TTL ms,
-- ARGV[4] idempotency record TTL ms, ARGV[5] commits channel,
-- ARGV[6] topic name, ARGV[7] batch count n,
-- ARGV[8] the chunk's creation time (unix ms), ARGV[9] the oldest a chunk
-- may be when it is committed, ms (0: no limit; restore replays old chunks),
-- then 6 per batch from ARGV[10]: partition, record count, byte offset,
-- byte length, idempotency key ('' for none), layout.
--
-- Returns a string (also stored in the marker):
--   line 1: base offsets, comma-separated, -1 for a duplicate batch
--   line 2: partition:high_watermark pairs, comma-separated
--   then one line per duplicate key: key TAB stored answer
-- Error replies: TOPIC_NOT_FOUND when meta is missing or its id is not
-- ARGV[1] (deleted, or deleted and created again); PARTITION_NOT_FOUND p
-- for a batch outside the topic; CHUNK_TOO_OLD when the chunk was created
-- more than ARGV[9] ms ago by Redis's clock. Each leaves every key
-- unchanged.
--
-- Invariants:
-- * Idempotent per chunk: when the marker exists its value is returned and
--   nothing changes, so a commit retried after a lost reply gets the same
--   offsets.
-- * Offsets of a partition are contiguous: each batch takes count offsets
--   at the current high watermark and raises it by count, so no two batches
--   overlap and there is no gap.
-- * A batch whose idempotency key has a live record is not indexed (base
--   -1) and the record is returned as a duplicate; the first batches of a
--   new key store "bases|layout" with the dedup TTL. Batches of one key in
--   one call all count as new.
-- * Every indexed batch adds 1 to its object's count in refs and its
--   length to its partition's count in bytes; whatever removes the entry
--   (retention, compaction, topic delete) takes them away again, so an
--   object with no field in refs is referenced by no entry of this topic.
-- * No chunk older than ARGV[9] is indexed: garbage collection relies on
--   it to delete chunks that were uploaded but never committed.
-- * The commit is announced on the channel as "T<TAB>p:hw,..." only when it
--   indexed at least one batch.
local done = redis.call('GET', KEYS[4])
if done then
  return done
end
local maxAge = tonumber(ARGV[9])
if maxAge > 0 then
  local t = redis.call('TIME')
  local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if nowMs - tonumber(ARGV[8]) > maxAge then
    return redis.error_reply('CHUNK_TOO_OLD')
  end
end
local meta = redis.call('HMGET', KEYS[1], 'id', 'partitions')
if not meta[1] or meta[1] ~= ARGV[1] then
  return redis.error_reply('TOPIC_NOT_FOUND')
end
local partitions = tonumber(meta[2])
local n = tonumber(ARGV[7])
for i = 1, n do
  local p = tonumber(ARGV[10 + (i-1)*6])
  if p < 0 or p >= partitions then
    return redis.error_reply('PARTITION_NOT_FOUND ' .. p)
  end
end
local bases, dups, fresh, order, hws = {}, {}, {}, {}, {}
for i = 1, n do
  local a = 10 + (i-1)*6
  local p, count, off, len, key = ARGV[a], tonumber(ARGV[a+1]), ARGV[a+2], ARGV[a+3], ARGV[a+4]
  local idem = KEYS[6 + 2*i]
  if key ~= '' and dups[key] == nil and fresh[key] == nil then
    local prev = redis.call('GET', idem)
    if prev then dups[key] = prev else fresh[key] = {idem = idem, layout = ARGV[a+5], bases = {}} end
  end
  if key ~= '' and dups[key] then
    bases[i] = '-1'
  else
    local hw = redis.call('HINCRBY', KEYS[2], p, count)
    local base = hw - count
    local b = string.format('%d', base)
    redis.call('ZADD', KEYS[6 + 2*i - 1], base, b .. '|' .. count .. '|' .. ARGV[2] .. '|' .. off .. '|' .. len)
    redis.call('HINCRBY', KEYS[5], ARGV[2], 1)
    redis.call('HINCRBY', KEYS[6], p, len)
    bases[i] = b
    if hws[p] == nil then order[#order+1] = p end
    hws[p] = string.format('%d', hw)
    if key ~= '' then
      local f = fresh[key]
      f.bases[#f.bases+1] = b
    end
  end
end
for key, f in pairs(fresh) do
  redis.call('SET', f.idem, table.concat(f.bases, ',') .. '|' .. f.layout, 'PX', ARGV[4])
end
local hwl = {}
for _, p in ipairs(order) do hwl[#hwl+1] = p .. ':' .. hws[p] end
local out = {table.concat(bases, ','), table.concat(hwl, ',')}
for key, v in pairs(dups) do out[#out+1] = key .. '\t' .. v end
local result = table.concat(out, '\n')
redis.call('SET', KEYS[4], result, 'PX', ARGV[3])
if #hwl > 0 then
  redis.call('PUBLISH', ARGV[5], ARGV[6] .. '\t' .. table.concat(hwl, ','))
end
return result
