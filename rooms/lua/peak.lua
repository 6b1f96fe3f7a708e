-- Keep the highest online count seen in a room.
-- KEYS[1] stats hash (field peak_online)
-- KEYS[2] room hash (read only: its status)
-- ARGV[1] online count just observed
-- Returns the peak after the update.
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak_online') or '0')
local online = tonumber(ARGV[1])
if online <= peak then
  return peak
end
redis.call('HSET', KEYS[1], 'peak_online', ARGV[1])
-- A report after the room's end must not leave a stats hash with no TTL (see count.lua).
if redis.call('PTTL', KEYS[1]) == -1 and redis.call('HGET', KEYS[2], 'status') == 'ended' then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return online
