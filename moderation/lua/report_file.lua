-- File one viewer report: join the target's open report, or open one in the review queue.
-- KEYS[1] the room's reports hash (t:<target> -> id, i:<id> -> target, h:<id> held)
-- KEYS[2] the reporters hash of the target (uid -> reason)
-- KEYS[3] the room's review stream (field "item")
-- ARGV[1] target key   ARGV[2] reporter uid   ARGV[3] reason
-- ARGV[4] the item's JSON, queued when this opens the report   ARGV[5] the queue's MAXLEN
-- Returns {report id, 1 if the reporter is new, 1 if this opened it, reporters}.
local open = redis.call('HGET', KEYS[1], 't:' .. ARGV[1])
if open and #redis.call('XRANGE', KEYS[3], open, open) == 0 then
  -- Its item left the queue without a resolution here (trimmed off a full queue): the
  -- report is not open any more, and the next one starts afresh.
  redis.call('HDEL', KEYS[1], 't:' .. ARGV[1], 'i:' .. open, 'h:' .. open)
  redis.call('DEL', KEYS[2])
  open = false
end
local opened = 0
if not open then
  open = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'item', ARGV[4])
  redis.call('HSET', KEYS[1], 't:' .. ARGV[1], open, 'i:' .. open, ARGV[1])
  redis.call('DEL', KEYS[2])
  opened = 1
end
local new = redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3])
return {open, new, opened, redis.call('HLEN', KEYS[2])}
