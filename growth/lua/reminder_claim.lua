-- Claim the first due reminder job: its score becomes the lease's end.
-- KEYS[1] sorted set: job -> due ms (or the end of the lease of whoever holds it)
-- ARGV[1] now ms, ARGV[2] lease ms
-- Returns {job, lease end} or false.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
local lease = string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('ZADD', KEYS[1], 'XX', lease, due[1])
return {due[1], lease}
