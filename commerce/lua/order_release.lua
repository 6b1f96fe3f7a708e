-- Release a reserved order exactly once: expired at its deadline, or cancelled.
-- KEYS[1] order hash
-- KEYS[2] its sale's hash
-- KEYS[3] its sale's holds hash
-- KEYS[4] room's deadline index
-- KEYS[5] room's ledger stream
-- KEYS[6] the order's coupon hash (with none: any key of the room's slot, untouched)
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] reason: "expired" | "cancelled"
-- ARGV[3] "1" when ARGV[4] names the only uid allowed to cancel, "0" for anyone
-- ARGV[4] owner uid
-- ARGV[5] ledger maxlen (approximate)
-- Returns the order's fields (flat) after the release, or {} when nothing changed.
local o = redis.call('HMGET', KEYS[1],
  'id', 'status', 'deadline', 'uid', 'qty', 'amount_fen', 'sale_id', 'coupon', 'discount_fen')
if o[2] ~= 'reserved' then
  return {}
end
if ARGV[2] == 'expired' then
  if tonumber(ARGV[1]) < tonumber(o[3]) then
    return {}
  end
elseif ARGV[2] ~= 'cancelled' or (ARGV[3] == '1' and ARGV[4] ~= o[4]) then
  return {}
end
local qty = tonumber(o[5])
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'release_reason', ARGV[2], 'released_at', ARGV[1])
redis.call('HINCRBY', KEYS[2], 'left', qty)
redis.call('HINCRBY', KEYS[2], 'reserved', -qty)
if redis.call('HINCRBY', KEYS[3], o[4], -qty) <= 0 then
  redis.call('HDEL', KEYS[3], o[4])
end
redis.call('ZREM', KEYS[4], o[1])
local extra = {}
if o[8] then
  -- The coupon goes back with the stock, in the same step.
  local c = redis.call('HMGET', KEYS[6], 'status', 'order')
  if c[1] == 'locked' and c[2] == o[1] then
    redis.call('HSET', KEYS[6], 'status', 'available')
    redis.call('HDEL', KEYS[6], 'order')
  end
  extra = {'coupon', o[8], 'original_amount_fen',
    string.format('%d', tonumber(o[6]) + tonumber(o[9])), 'discount_fen', o[9]}
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*',
  'type', 'order_' .. ARGV[2], 'order', o[1], 'sale', o[7], 'uid', o[4], 'qty', o[5],
  'amount_fen', o[6], 'ts', ARGV[1], unpack(extra))
return redis.call('HGETALL', KEYS[1])
