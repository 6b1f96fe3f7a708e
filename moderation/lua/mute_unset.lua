-- Lift a uid's mute (or ban), dropping lapsed entries first.
-- KEYS[1] zset: uid scored by until (ms; "+inf" = forever)
-- KEYS[2] hash: uid -> JSON {"by", "reason", "at"}
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] uid
-- Returns 1 when the uid had an entry in force, else 0.
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[2], uid)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
return removed
