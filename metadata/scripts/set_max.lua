-- set_max.lua raises a number stored as a string to ARGV[1]
-- (Store.SetJobLastRun).
--
-- KEYS[1] the value prefix:job:J:last (unix ms)
-- ARGV[1] the new value
--
-- Returns 'OK'.
--
-- Invariants: the stored value never decreases; a missing or non-numeric
-- value is replaced.
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur == nil or cur < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 'OK'
