-- Retract one danmaku from the history; note it in the journal when there is one.
-- KEYS[1] danmaku history zset (payload scored by seq)
-- KEYS[2] the room's journal list, or absent
-- ARGV[1] seq
-- ARGV[2] the journal entry to add, {"t":"retract","seq":N,"ts":ms}
-- Returns 1 when the comment was in the history, else 0.
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if removed > 0 and KEYS[2] then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
return removed > 0 and 1 or 0
