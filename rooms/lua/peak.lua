-- Keep the highest online count seen in a room.
-- KEYS[1] stats hash (field peak_online)
-- ARGV[1] online count just observed
-- Returns the peak after the update.
local peak = tonumber(redis.call('HGET', KEYS[1], 'peak_online') or '0')
local online = tonumber(ARGV[1])
if online > peak then
  redis.call('HSET', KEYS[1], 'peak_online', ARGV[1])
  return online
end
return peak
