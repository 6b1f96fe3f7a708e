-- Queues a finished delivery (succeeded or dead) again, with the same event id, behind
-- whatever of its subject is still queued.
-- KEYS[1] delivery hash, KEYS[2] its attempts, KEYS[3] its chain, KEYS[4] the endpoint's
-- due set, KEYS[5] the endpoint's dead set, KEYS[6] the pending counts hash
-- ARGV[1] delivery id, ARGV[2] now (ms), ARGV[3] endpoint id
-- Returns 1 when queued, 0 when it is unknown or still pending.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'succeeded' and status ~= 'dead' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'attempts', 0, 'next_at', ARGV[2])
redis.call('HINCRBY', KEYS[6], ARGV[3], 1)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[5], ARGV[1])
if redis.call('RPUSH', KEYS[3], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
end
return 1
