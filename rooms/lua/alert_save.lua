-- Save a room's alert state and its new or cleared alerts, only for the lease's holder.
-- KEYS[1] the lease, KEYS[2] state (string), KEYS[3] alert ids (list, newest first),
-- KEYS[4] alerts (hash: id -> JSON)
-- ARGV[1] the lease value expected ("holder|token"), ARGV[2] retention ms,
-- ARGV[3] state JSON, ARGV[4] alerts kept at most,
-- then pairs: alert id, its JSON (a new id joins the list; a known one is replaced)
-- Returns 1 when written, 0 when the lease is not (any more) the caller's: nothing written.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local ttl = ARGV[2]
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)
for i = 5, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[4], ARGV[i]) == 0 then
    redis.call('LPUSH', KEYS[3], ARGV[i])
  end
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end
local keep = tonumber(ARGV[4])
while redis.call('LLEN', KEYS[3]) > keep do
  redis.call('HDEL', KEYS[4], redis.call('RPOP', KEYS[3]))
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
end
return 1
