-- One online sample of a room in a minute: the last one and the peak.
-- KEYS[1] hash: the minute's counters and gauges (the room's hash tag)
-- ARGV[1] online now, ARGV[2] retention ms
local n = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'online', n)
local peak = tonumber(redis.call('HGET', KEYS[1], 'online_peak') or '-1')
if n > peak then
  redis.call('HSET', KEYS[1], 'online_peak', n)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
