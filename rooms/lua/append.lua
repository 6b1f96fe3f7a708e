-- Append one danmaku: check the room, assign the next seq, store it, publish it.
-- KEYS[1] danmaku meta hash (seq, epoch)
-- KEYS[2] danmaku history zset (payload scored by seq)
-- KEYS[3] room hash
-- KEYS[4] the room's journal list (archiving on: every comment, never trimmed), or absent
-- ARGV[1] "1" to require the room to be live, "0" not to
-- ARGV[2] body: JSON object without "t"/"seq", as orjson wrote it
-- ARGV[3] history size
-- ARGV[4] candidate epoch, used only when the log has none yet
-- ARGV[5] pub/sub channel of the room
-- ARGV[6] "SPUBLISH" on Redis Cluster (sharded pub/sub, the channel is in the room's slot),
--         else absent or "PUBLISH"
-- Returns {"ok", seq, epoch, payload} | {"not_found"} | {"not_live", status}
local status = redis.call('HGET', KEYS[3], 'status')
if not status then
  return {'not_found'}
end
if ARGV[1] == '1' and status ~= 'live' then
  return {'not_live', status}
end
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4]) == 1 then
  -- A new epoch is a new numbering: entries left from an older one would collide.
  redis.call('DEL', KEYS[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
-- Splice rather than cjson-encode, so the bytes equal orjson.dumps({"t","seq",**body}).
local head = '{"t":"dm","seq":' .. string.format('%d', seq)
local payload
if ARGV[2] == '{}' then
  payload = head .. '}'
else
  payload = head .. ',' .. string.sub(ARGV[2], 2)
end
redis.call('ZADD', KEYS[2], seq, payload)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', seq - tonumber(ARGV[3]))
if KEYS[4] then
  -- In the same step: the archive holds exactly the comments the room was sent.
  redis.call('RPUSH', KEYS[4], payload)
end
-- Publishing inside the script makes delivery order equal seq order across processes.
redis.call(ARGV[6] == 'SPUBLISH' and 'SPUBLISH' or 'PUBLISH', ARGV[5], payload)
return {'ok', seq, epoch, payload}
