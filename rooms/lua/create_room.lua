-- Create a room record unless one with its id exists.
-- KEYS[1] room hash
-- ARGV[1] ms the record lives unless the room starts (0: for good)
-- ARGV[2..] field, value, field, value, ... of the record
-- Returns 1 when created, 0 when the id was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
