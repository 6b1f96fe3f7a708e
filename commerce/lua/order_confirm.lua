-- Record a payment of an order exactly once (outcomes and their order: commerce/sale_store.py).
-- KEYS[1] order hash
-- KEYS[2] its sale's hash
-- KEYS[3] room's deadline index
-- KEYS[4] room's ledger stream
-- KEYS[5] the order's coupon hash (with none: any key of the room's slot, untouched)
-- ARGV[1] amount paid (fen)
-- ARGV[2] transaction id
-- ARGV[3] now (Unix ms, the caller's clock)
-- ARGV[4] ledger maxlen (approximate)
-- Returns {outcome, the order's fields (flat) after the step}, outcome one of
-- confirmed | late | duplicate | mismatch | not_found
local o = redis.call('HMGET', KEYS[1],
  'id', 'status', 'amount_fen', 'transaction_id', 'uid', 'qty', 'sale_id', 'coupon',
  'discount_fen')
if not o[1] then
  return {'not_found', {}}
end
if ARGV[1] ~= o[3] then
  return {'mismatch', redis.call('HGETALL', KEYS[1])}
end
if o[2] == 'reserved' then
  local qty = tonumber(o[6])
  redis.call('HSET', KEYS[1], 'status', 'paid', 'transaction_id', ARGV[2], 'paid_at', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'reserved', -qty)
  redis.call('HINCRBY', KEYS[2], 'paid', qty)
  redis.call('ZREM', KEYS[3], o[1])
  local extra = {}
  if o[8] then
    local c = redis.call('HMGET', KEYS[5], 'status', 'order')
    if c[1] == 'locked' and c[2] == o[1] then
      redis.call('HSET', KEYS[5], 'status', 'used')
    end
    extra = {'coupon', o[8], 'original_amount_fen',
      string.format('%d', tonumber(o[3]) + tonumber(o[9])), 'discount_fen', o[9]}
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
    'type', 'order_paid', 'order', o[1], 'sale', o[7], 'uid', o[5], 'qty', o[6],
    'amount_fen', o[3], 'transaction_id', ARGV[2], 'ts', ARGV[3], unpack(extra))
  return {'confirmed', redis.call('HGETALL', KEYS[1])}
end
if o[2] == 'expired' or o[2] == 'cancelled' then
  -- Its stock went back at the release and stays there: the money is owed back instead.
  redis.call('HSET', KEYS[1], 'status', 'paid_late', 'transaction_id', ARGV[2],
    'paid_at', ARGV[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
    'type', 'payment_late', 'order', o[1], 'sale', o[7], 'uid', o[5], 'qty', o[6],
    'amount_fen', o[3], 'transaction_id', ARGV[2], 'status', o[2], 'ts', ARGV[3])
  return {'late', redis.call('HGETALL', KEYS[1])}
end
local outcome = (o[4] == ARGV[2]) and 'duplicate' or 'mismatch'
return {outcome, redis.call('HGETALL', KEYS[1])}
