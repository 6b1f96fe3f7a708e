-- Apply one lifecycle action as a compare-and-set of the room's status.
-- KEYS[1] room hash
-- KEYS[2] the room's ledger stream (same {room} slot), read only when ARGV[5] is set
-- ARGV[1] target status
-- ARGV[2] now (Unix ms), stamped on updated_at
-- ARGV[3] timestamp field the action stamps too, or "" for none
-- ARGV[4] "1" when the action starts the room: it no longer expires (PERSIST)
-- ARGV[5] ledger event type written with the transition (room_started...), or ""
-- ARGV[6] ledger maxlen (approximate)
-- ARGV[7..] the statuses the action may start from
-- Returns {"ok", field, value, ...} | {"not_found"} | {"conflict", status}
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'not_found'}
end
local allowed = false
for i = 7, #ARGV do
  if ARGV[i] == status then
    allowed = true
    break
  end
end
if not allowed then
  return {'conflict', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
end
if ARGV[4] == '1' then
  redis.call('PERSIST', KEYS[1])
end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[5], 'ts', ARGV[2])
end
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, 'ok')
return record
