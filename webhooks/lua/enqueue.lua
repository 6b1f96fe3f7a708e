-- Queues one event for one endpoint, once: a delivery that exists already is left alone
-- (the same ledger entry read again after a crash). The endpoint's list keeps the newest
-- ARGV[8]; a finished delivery that falls off it is deleted (its memory is bounded).
-- KEYS[1] delivery hash, KEYS[2] its subject's chain, KEYS[3] the endpoint's due set,
-- KEYS[4] the endpoint's deliveries log, KEYS[5] the endpoint's dead set, KEYS[6] the
-- pending counts hash
-- ARGV[1] delivery id, ARGV[2] endpoint, ARGV[3] event id, ARGV[4] type, ARGV[5] subject,
-- ARGV[6] body, ARGV[7] created (ms), ARGV[8] log cap, ARGV[9] max pending,
-- ARGV[10] the prefix of delivery hashes, ARGV[11] the prefix of attempt lists (both in
-- the {wh} slot, as KEYS are)
-- Returns 1 when queued, 0 when it existed, -1 when the endpoint has ARGV[9] pending.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if tonumber(redis.call('HGET', KEYS[6], ARGV[2]) or '0') >= tonumber(ARGV[9]) then
  return -1
end
redis.call('HINCRBY', KEYS[6], ARGV[2], 1)
redis.call('HSET', KEYS[1], 'endpoint', ARGV[2], 'event_id', ARGV[3], 'type', ARGV[4],
  'subject', ARGV[5], 'body', ARGV[6], 'created_at', ARGV[7], 'status', 'pending',
  'attempts', 0, 'next_at', ARGV[7])
if redis.call('RPUSH', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
end
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
local over = redis.call('ZCARD', KEYS[4]) - tonumber(ARGV[8])
if over > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, over - 1)) do
    local status = redis.call('HGET', ARGV[10] .. old, 'status')
    if status and status ~= 'pending' then
      redis.call('DEL', ARGV[10] .. old, ARGV[11] .. old)
      redis.call('ZREM', KEYS[5], old)
    end
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, over - 1)
end
return 1
