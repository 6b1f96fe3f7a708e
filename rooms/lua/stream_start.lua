-- Set (or clear) when a room's recorded stream began, unless the room has ended.
-- KEYS[1] room hash
-- ARGV[1] Unix ms, or "" to clear
-- Returns {"ok", field, value, ...} | {"not_found"} | {"conflict"}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'not_found'}
end
if status == 'ended' then
  return {'conflict'}
end
if ARGV[1] == '' then
  redis.call('HDEL', KEYS[1], 'stream_started_at')
else
  redis.call('HSET', KEYS[1], 'stream_started_at', ARGV[1])
end
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, 'ok')
return record
