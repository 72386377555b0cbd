-- ensure_token.lua creates a token with a secret chosen by the caller
-- unless it exists (Store.EnsureToken: the bootstrap token of a deployment).
--
-- KEYS[1] token hash prefix:{@auth}:token:ID, KEYS[2] id set prefix:{@auth}:tokens,
-- KEYS[3] set of revoked ids prefix:{@auth}:revoked
-- ARGV[1] id, ARGV[2] hex SHA-256 of the secret, ARGV[3] name,
-- ARGV[4] scopes (space-separated), ARGV[5] created_ms
--
-- Returns 'CREATED', 'EXISTS' when the token is there with the same secret
-- hash (name and scopes are left as they are), or the error reply
-- TOKEN_CONFLICT when a token with that id has another secret, or
-- TOKEN_REVOKED when that id was revoked.
--
-- Invariants: an existing token is never overwritten; the hash and the
-- id set change together.
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then
  return redis.error_reply('TOKEN_REVOKED')
end
local cur = redis.call('HGET', KEYS[1], 'hash')
if cur then
  if cur == ARGV[2] then
    return 'EXISTS'
  end
  return redis.error_reply('TOKEN_CONFLICT')
end
redis.call('HSET', KEYS[1], 'hash', ARGV[2], 'name', ARGV[3], 'scopes', ARGV[4], 'created_ms', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return 'CREATED'
