-- Count a new room against its anchor's quota, atomically (the anchor's key only).
-- KEYS[1] sorted set: the anchor's open rooms -> the ms they expire unless started
--         (+inf once started, or when created without a deadline)
-- ARGV[1] room id
-- ARGV[2] quota (0: no cap, count only)
-- ARGV[3] ms the room has to start (0: no deadline)
-- Returns 1 when admitted, 2 when the id was counted already, 0 when the anchor is full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 2
end
local quota = tonumber(ARGV[2])
if quota > 0 and redis.call('ZCARD', KEYS[1]) >= quota then
  return 0
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
else
  redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
end
-- The set lives as long as its last deadline, for good once a room has started.
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]) + 1)
end
return 1
