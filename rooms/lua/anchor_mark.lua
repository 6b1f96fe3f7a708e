-- Follow a room's start or end in its anchor's count (the anchor's key only).
-- KEYS[1] sorted set: the anchor's open rooms (see anchor_admit.lua)
-- ARGV[1] room id
-- ARGV[2] "live": counted for good; "ended": no longer counted
if ARGV[2] == 'live' then
  redis.call('ZADD', KEYS[1], '+inf', ARGV[1])
  redis.call('PERSIST', KEYS[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] ~= nil and top[2] ~= 'inf' then
  redis.call('PEXPIREAT', KEYS[1], tonumber(top[2]) + 1)
end
return 1
