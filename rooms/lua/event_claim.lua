-- Claim client event ids of one user in one room: each is new once per ttl.
-- KEYS[1] sorted set: the user's recent event ids in the room -> expiry (ms, Redis clock)
-- ARGV[1] ttl ms; ARGV[2 ..] event ids
-- Returns 1 per new id, 0 per id seen within its ttl (or earlier in ARGV).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for i = 2, #ARGV do
  out[i - 1] = redis.call('ZADD', KEYS[1], 'NX', now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ttl)
return out
