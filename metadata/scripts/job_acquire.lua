-- job_acquire.lua takes or renews a background job's lease
-- (JobLease.Acquire): SET key holder NX PX ttl, except that the holder of
-- the lease renews it instead of failing.
--
-- KEYS[1] the job's lease prefix:job:J:lease
-- ARGV[1] holder (node id), ARGV[2] TTL ms
--
-- Returns 1 when ARGV[1] holds the lease afterwards (for ARGV[2] ms from
-- now), 0 when another holder does (its lease is left untouched).
--
-- Invariants: at most one holder at a time; only a missing (expired or
-- released) lease changes hands.
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
