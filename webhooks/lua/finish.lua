-- Records an attempt of a pending delivery and what follows it: another attempt at
-- ARGV[5] (retry), or the end (succeeded, dead), which lets the next of its chain go.
-- KEYS[1] delivery hash, KEYS[2] its attempts, KEYS[3] its chain, KEYS[4] the endpoint's
-- due set, KEYS[5] the endpoint's dead set, KEYS[6] the endpoint's deliveries log,
-- KEYS[7] the pending counts hash
-- ARGV[1] delivery id, ARGV[2] verdict (retry, succeeded, dead), ARGV[3] attempt JSON,
-- ARGV[4] now (ms), ARGV[5] next attempt (ms), ARGV[6] ms a finished record is kept,
-- ARGV[7] attempts kept, ARGV[8] endpoint id
-- Returns 0 when the delivery is not pending (finished by a lease's former holder).
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then
  return 0
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[7]), -1)
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if ARGV[2] == 'retry' then
  redis.call('HSET', KEYS[1], 'next_at', ARGV[5])
  if redis.call('LINDEX', KEYS[3], 0) == ARGV[1] then
    redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
  end
  return 1
end
redis.call('HINCRBY', KEYS[7], ARGV[8], -1)
redis.call('HSET', KEYS[1], 'status', ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('LREM', KEYS[3], 1, ARGV[1])
local head = redis.call('LINDEX', KEYS[3], 0)
if head then
  redis.call('ZADD', KEYS[4], ARGV[4], head)
end
if not redis.call('ZSCORE', KEYS[6], ARGV[1]) then
  -- Fell off the endpoint's list while pending: nothing shows it any more.
  redis.call('DEL', KEYS[1], KEYS[2])
  return 1
end
if ARGV[2] == 'dead' then
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
