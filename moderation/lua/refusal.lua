-- Record one refusal of a user in a room and count those within the sliding window.
-- KEYS[1] zset: refusals scored by time (ms)
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] window in ms
-- ARGV[3] member naming this refusal (unique)
-- ARGV[4] cap: refusals remembered at most (the oldest go)
-- Returns the number of refusals with time > now - window, this one included.
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cap = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
if n > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1)
  n = cap
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
