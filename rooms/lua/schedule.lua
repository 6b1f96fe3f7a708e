-- Set (or clear) when a room is announced to start, while it is still scheduled.
-- KEYS[1] room hash
-- ARGV[1] Unix ms, or "" to clear
-- Returns {"ok", field, value, ...} | {"not_found"} | {"conflict", status}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'not_found'}
end
if status ~= 'scheduled' then
  return {'conflict', status}
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'scheduled_at')
else
  redis.call('HSET', KEYS[1], 'scheduled_at', ARGV[1])
end
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, 'ok')
return record
