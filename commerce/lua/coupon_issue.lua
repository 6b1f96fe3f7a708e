-- Issue one coupon of a batch to a uid (the checks and their order: commerce/coupons.py).
-- KEYS[1] batch hash, KEYS[2] batch's users hash (uid -> issued), KEYS[3] batch's issue
-- keys hash (key -> coupon id), KEYS[4] the new coupon's hash, KEYS[5] a room's ledger
-- stream (read only when ARGV[5] is "1"), KEYS[6] the room's set of issued coupon ids
-- (written only for a room's batch: the room's end expires its coupons through it)
-- ARGV[1] uid, ARGV[2] coupon id, ARGV[3] now ms, ARGV[4] issue key ("" for none),
-- ARGV[5] "1" to append coupon_issued to KEYS[5], ARGV[6] ledger maxlen, ARGV[7] reason
-- Returns {outcome, coupon id}: ok | replay | not_found | ended | sold_out | limit_reached
-- | taken (the new id exists: retry with another).
local b = redis.call('HMGET', KEYS[1], 'id', 'title', 'total', 'per_user', 'issued',
  'kind', 'value', 'cap_fen', 'min_spend_fen', 'starts_at', 'ends_at', 'room')
if not b[1] then
  return {'not_found', ''}
end
if ARGV[4] ~= '' then
  local first = redis.call('HGET', KEYS[3], ARGV[4])
  if first then
    return {'replay', first}
  end
end
if tonumber(ARGV[3]) >= tonumber(b[11]) then
  return {'ended', ''}
end
if tonumber(b[5]) >= tonumber(b[3]) then
  return {'sold_out', ''}
end
if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') >= tonumber(b[4]) then
  return {'limit_reached', ''}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {'taken', ''}
end
redis.call('HINCRBY', KEYS[1], 'issued', 1)
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('HSET', KEYS[4], 'id', ARGV[2], 'batch', b[1], 'uid', ARGV[1], 'title', b[2],
  'kind', b[6], 'value', b[7], 'cap_fen', b[8], 'min_spend_fen', b[9], 'starts_at', b[10],
  'ends_at', b[11], 'room', b[12], 'status', 'available', 'issued_at', ARGV[3],
  'reason', ARGV[7])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[2])
end
if b[12] and b[12] ~= '' then
  redis.call('SADD', KEYS[6], ARGV[2])
end
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', 'type', 'coupon_issued',
    'coupon', ARGV[2], 'batch', b[1], 'uid', ARGV[1], 'reason', ARGV[7], 'ts', ARGV[3])
end
return {'ok', ARGV[2]}
