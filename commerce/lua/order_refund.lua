-- Mark a paid (or late-paid) order refunded exactly once; restock only when asked.
-- KEYS[1] order hash
-- KEYS[2] its sale's hash
-- KEYS[3] its sale's holds hash
-- KEYS[4] room's ledger stream
-- KEYS[5] the order's coupon hash (with none: any key of the room's slot, untouched)
-- ARGV[1] refund (fen)
-- ARGV[2] out_refund_no
-- ARGV[3] now (Unix ms, the caller's clock)
-- ARGV[4] "1" to return the units to the sale and the uid's quota, "0" not to
-- ARGV[5] ledger maxlen (approximate)
-- ARGV[6] refund_status: "processing", or "success" when the refund finished at once
-- Returns the order's fields (flat) after the step, or {} when nothing changed.
local o = redis.call('HMGET', KEYS[1], 'id', 'status', 'amount_fen', 'uid', 'qty', 'sale_id',
  'coupon', 'discount_fen')
if o[2] ~= 'paid' and o[2] ~= 'paid_late' then
  return {}
end
if tonumber(ARGV[1]) > tonumber(o[3]) then
  return {}
end
local late = o[2] == 'paid_late'
-- A late payment's units went back when the order was released: never twice.
local back = ARGV[4] == '1' and not late
if not late then
  local qty = tonumber(o[5])
  redis.call('HINCRBY', KEYS[2], 'paid', -qty)
  if back then
    redis.call('HINCRBY', KEYS[2], 'left', qty)
    if redis.call('HINCRBY', KEYS[3], o[4], -qty) <= 0 then
      redis.call('HDEL', KEYS[3], o[4])
    end
  else
    redis.call('HINCRBY', KEYS[2], 'refunded', qty)
  end
end
redis.call('HSET', KEYS[1], 'status', 'refunded', 'refund_fen', ARGV[1],
  'out_refund_no', ARGV[2], 'refunded_at', ARGV[3], 'restocked', back and '1' or '0',
  'refund_status', ARGV[6])
if ARGV[6] ~= 'processing' then
  redis.call('HSET', KEYS[1], 'refund_settled_at', ARGV[3])
end
local extra = {}
if o[7] then
  -- A full refund of a paid order gives its coupon back (a late payment's coupon was
  -- released with the order and may be another order's by now).
  local restored = '0'
  local c = redis.call('HMGET', KEYS[5], 'status', 'order')
  if not late and ARGV[1] == o[3] and c[1] == 'used' and c[2] == o[1] then
    redis.call('HSET', KEYS[5], 'status', 'available')
    redis.call('HDEL', KEYS[5], 'order')
    restored = '1'
  end
  extra = {'coupon', o[7], 'original_amount_fen',
    string.format('%d', tonumber(o[3]) + tonumber(o[8])), 'discount_fen', o[8],
    'coupon_restored', restored}
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*',
  'type', 'order_refunded', 'order', o[1], 'sale', o[6], 'uid', o[4], 'qty', o[5],
  'amount_fen', ARGV[1], 'out_refund_no', ARGV[2], 'restock', back and '1' or '0',
  'late', late and '1' or '0', 'ts', ARGV[3], unpack(extra))
return redis.call('HGETALL', KEYS[1])
