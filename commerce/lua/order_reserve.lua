-- Reserve units of a flash sale for a uid (the checks and their order: commerce/sale_store.py).
-- KEYS[1] sale hash
-- KEYS[2] sale's holds hash (uid -> units reserved + paid)
-- KEYS[3] sale's idempotency hash (digest of uid and key -> order id)
-- KEYS[4] order hash of the new order id
-- KEYS[5] room's orders (sorted set by reservation number)
-- KEYS[6] room's deadline index (sorted set of reserved orders by deadline)
-- KEYS[7] room's ledger stream
-- KEYS[8] the coupon's hash (with no coupon: any key of the room's slot, untouched)
-- ARGV[1] uid
-- ARGV[2] qty ("0" when the caller's was not an integer)
-- ARGV[3] idempotency digest
-- ARGV[4] idempotency key
-- ARGV[5] now (Unix ms, the caller's clock)
-- ARGV[6] the new order id
-- ARGV[7] ledger maxlen (approximate)
-- ARGV[8] coupon id, or "" for none
-- ARGV[9] the order's original amount the discount was computed for (fen)
-- ARGV[10] the discount (fen; commerce.coupons.discount_fen, computed by the caller from
--          the coupon's and the sale's immutable terms)
-- Returns {outcome, left, order id or "", amount or "", deadline or ""}, outcome one of
-- ok | replay (the key's earlier order) | taken (the new id exists: retry with another)
-- | not_found | not_started | ended | bad_qty | limit_reached | sold_out
-- | coupon_unavailable (not the uid's, locked or used) | coupon_expired | coupon_stale
-- (ARGV[9] is not qty x price: a caller bug)
local m = redis.call('HMGET', KEYS[1],
  'id', 'left', 'price_fen', 'limit', 'starts_at', 'ends_at', 'reserve_ms')
if not m[1] then
  return {'not_found', 0, '', '', ''}
end
local left = tonumber(m[2])
local first = redis.call('HGET', KEYS[3], ARGV[3])
if first then
  return {'replay', left, first, '', ''}
end
local now = tonumber(ARGV[5])
if now < tonumber(m[5]) then
  return {'not_started', left, '', '', ''}
end
if now >= tonumber(m[6]) then
  return {'ended', left, '', '', ''}
end
local qty = tonumber(ARGV[2])
local limit = tonumber(m[4])
if qty < 1 or qty > limit then
  return {'bad_qty', left, '', '', ''}
end
if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') + qty > limit then
  return {'limit_reached', left, '', '', ''}
end
if left < qty then
  return {'sold_out', left, '', '', ''}
end
local coupon = ARGV[8]
local original = qty * tonumber(m[3])
local discount = 0
if coupon ~= '' then
  -- Locked in this step with the stock: a coupon is never on two orders.
  local c = redis.call('HMGET', KEYS[8], 'uid', 'status', 'starts_at', 'ends_at')
  if c[1] ~= ARGV[1] or c[2] ~= 'available' then
    return {'coupon_unavailable', left, '', '', ''}
  end
  if now < tonumber(c[3]) or now >= tonumber(c[4]) then
    return {'coupon_expired', left, '', '', ''}
  end
  discount = tonumber(ARGV[10])
  if tonumber(ARGV[9]) ~= original or discount < 1 or discount >= original then
    return {'coupon_stale', left, '', '', ''}
  end
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {'taken', left, '', '', ''}
end
local amount = string.format('%d', original - discount)
local deadline = string.format('%d', now + tonumber(m[7]))
left = redis.call('HINCRBY', KEYS[1], 'left', -qty)
redis.call('HINCRBY', KEYS[1], 'reserved', qty)
redis.call('HINCRBY', KEYS[2], ARGV[1], qty)
redis.call('HSET', KEYS[4], 'id', ARGV[6], 'sale_id', m[1], 'uid', ARGV[1], 'qty', ARGV[2],
  'amount_fen', amount, 'status', 'reserved', 'created_at', ARGV[5], 'deadline', deadline,
  'idem_key', ARGV[4])
local extra = {}
if coupon ~= '' then
  redis.call('HSET', KEYS[8], 'status', 'locked', 'order', ARGV[6])
  redis.call('HSET', KEYS[4], 'coupon', coupon, 'discount_fen', ARGV[10])
  extra = {'coupon', coupon, 'original_amount_fen', string.format('%d', original),
    'discount_fen', ARGV[10]}
end
redis.call('ZADD', KEYS[5], redis.call('ZCARD', KEYS[5]) + 1, ARGV[6])
redis.call('ZADD', KEYS[6], deadline, ARGV[6])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[7], '*',
  'type', 'order_reserved', 'order', ARGV[6], 'sale', m[1], 'uid', ARGV[1], 'qty', ARGV[2],
  'amount_fen', amount, 'deadline', deadline, 'left', left, 'ts', ARGV[5], unpack(extra))
return {'ok', left, ARGV[6], amount, deadline}
