-- Take, renew or release a room's alert-evaluation lease (value "holder|token").
-- KEYS[1] the lease (string, PX)
-- KEYS[2] the room's fencing counter (a new token per take-over)
-- ARGV[1] holder, ARGV[2] ttl ms, ARGV[3] "acquire" or "release",
-- ARGV[4] the token to release, ARGV[5] the counter's retention ms
-- acquire: the token when held by ARGV[1] (taken now or renewed), 0 when someone else
-- holds it. release: 1 when ARGV[1] held it with ARGV[4] and it is gone, else 0.
local cur = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. '|'
if ARGV[3] == 'release' then
  if cur == mine .. ARGV[4] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if not cur then
  local token = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  -- SET NX PX: the GET above saw no lease, and nothing runs between the two.
  redis.call('SET', KEYS[1], mine .. token, 'NX', 'PX', ARGV[2])
  return token
end
if string.sub(cur, 1, #mine) == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(cur, #mine + 1))
end
return 0
