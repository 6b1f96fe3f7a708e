-- Record one node's viewer count of a room and return the room's total.
-- KEYS[1] online hash: node -> "count:expires_at_ms"
-- ARGV[1] node id
-- ARGV[2] count (0 or less removes the node)
-- ARGV[3] ttl in ms
-- Returns the sum over unexpired nodes; expired ones are removed.
-- "now" is the server's clock, so processes with skewed clocks agree on expiry.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = tonumber(ARGV[2])
if count > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], string.format('%d:%d', count, now + tonumber(ARGV[3])))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local total, last = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local c, exp = string.match(fields[i + 1], '^(%d+):(%d+)$')
  exp = tonumber(exp)
  if exp == nil or exp <= now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    total = total + tonumber(c)
    if exp > last then
      last = exp
    end
  end
end
-- A room every node stopped reporting must not leave its key behind.
if last > 0 then
  redis.call('PEXPIREAT', KEYS[1], last)
end
return total
