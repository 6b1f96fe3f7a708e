-- List the entries in force (mutes of a room, or bans), dropping lapsed ones.
-- KEYS[1] zset: uid scored by until (ms; "+inf" = forever)
-- KEYS[2] hash: uid -> JSON {"by", "reason", "at"}
-- ARGV[1] now (Unix ms, the caller's clock)
-- Returns {uid, until, json, uid, until, json, ...}, soonest to lapse first.
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('HDEL', KEYS[2], uid)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do
  out[#out + 1] = rows[i]
  out[#out + 1] = rows[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], rows[i]) or '{}'
end
return out
