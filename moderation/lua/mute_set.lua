-- Mute (or ban) a uid until a time, replacing its previous entry; lapsed entries go.
-- KEYS[1] zset: uid scored by until (ms; "+inf" = forever)
-- KEYS[2] hash: uid -> JSON {"by", "reason", "at"}
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] uid
-- ARGV[3] until (ms, or "+inf")
-- ARGV[4] JSON of the entry
-- ARGV[5] "1" to let both keys lapse with their last entry (room mutes), "0" not to (bans)
-- Returns 1.
local now = tonumber(ARGV[1])
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[2], uid)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
if ARGV[5] == '1' then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local ttl = string.format('%d', tonumber(last[2]) - now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
