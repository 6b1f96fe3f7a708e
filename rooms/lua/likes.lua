-- Add likes to a room's total.
-- KEYS[1] stats hash (field likes)
-- KEYS[2] room hash (read only: its status)
-- ARGV[1] likes to add
-- Returns the new total.
local total = redis.call('HINCRBY', KEYS[1], 'likes', ARGV[1])
-- A tick's likes after the room's end must not leave a stats hash with no TTL (count.lua).
if redis.call('PTTL', KEYS[1]) == -1 and redis.call('HGET', KEYS[2], 'status') == 'ended' then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return total
