-- Settle a processing refund exactly once (the refund notification).
-- KEYS[1] order hash
-- KEYS[2] room's ledger stream
-- ARGV[1] out_refund_no the notification names
-- ARGV[2] state: success, closed or abnormal
-- ARGV[3] now (Unix ms, the caller's clock)
-- ARGV[4] ledger maxlen (approximate)
-- Returns the order's fields (flat) after the step, or {} when nothing changed.
local o = redis.call('HMGET', KEYS[1], 'id', 'status', 'out_refund_no', 'refund_status',
  'sale_id', 'uid', 'qty', 'refund_fen')
if o[2] ~= 'refunded' or o[3] ~= ARGV[1] or o[4] ~= 'processing' then
  return {}
end
redis.call('HSET', KEYS[1], 'refund_status', ARGV[2], 'refund_settled_at', ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'type', 'refund_settled', 'order', o[1], 'sale', o[5], 'uid', o[6], 'qty', o[7],
  'amount_fen', o[8], 'out_refund_no', ARGV[1], 'state', ARGV[2], 'ts', ARGV[3])
return redis.call('HGETALL', KEYS[1])
