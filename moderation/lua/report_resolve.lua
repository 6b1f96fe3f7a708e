-- Close an open report and take its item out of the review queue: exactly once.
-- KEYS[1] the room's reports hash   KEYS[2] the reporters hash of its target
-- KEYS[3] the room's review stream
-- ARGV[1] report id   ARGV[2] its target key (read before; checked again here)
-- Returns {item JSON, uid1, reason1, uid2, reason2, ...}, or false when not open.
if redis.call('HGET', KEYS[1], 'i:' .. ARGV[1]) ~= ARGV[2] then
  return false
end
local rows = redis.call('XRANGE', KEYS[3], ARGV[1], ARGV[1])
redis.call('HDEL', KEYS[1], 'i:' .. ARGV[1], 'h:' .. ARGV[1])
if redis.call('HGET', KEYS[1], 't:' .. ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[1], 't:' .. ARGV[2])
end
local reporters = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
if #rows == 0 then
  return false
end
redis.call('XDEL', KEYS[3], ARGV[1])
local out = {false}
local fields = rows[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'item' then
    out[1] = fields[i + 1]
  end
end
for i = 1, #reporters do
  out[#out + 1] = reporters[i]
end
return out
