-- Read a room's invite counters in one step.
-- KEYS[1] set opened, KEYS[2] hash tree, KEYS[3] hash kids, KEYS[4] hash depths
-- Returns {opens, invited_uv, inviters, {depth, n, depth, n, ...}}.
return {
  redis.call('SCARD', KEYS[1]),
  redis.call('HLEN', KEYS[2]),
  redis.call('HLEN', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
}
