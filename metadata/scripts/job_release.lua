-- job_release.lua gives a background job's lease up (JobLease.Release).
--
-- KEYS[1] the job's lease prefix:job:J:lease
-- ARGV[1] holder (node id)
--
-- Returns 1 when the lease was ARGV[1]'s and is deleted, 0 otherwise.
--
-- Invariants: only the holder frees its lease; a node releasing a lease
-- that passed to another node (after its own expired) changes nothing.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
