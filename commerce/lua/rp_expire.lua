-- Close an open red packet at its deadline and refund what is left, exactly once.
-- KEYS[1] packet hash
-- KEYS[2] shares list
-- KEYS[3] room's open-packet set
-- KEYS[4] room's ledger stream
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] ledger maxlen (approximate)
-- Returns {"ok", amount_fen, shares, room_id, sender} | {"no"}
local m = redis.call('HMGET', KEYS[1], 'id', 'status', 'expires_at', 'room_id', 'sender')
if not m[1] or m[2] ~= 'open' or tonumber(ARGV[1]) < tonumber(m[3]) then
  return {'no'}
end
local shares = redis.call('LRANGE', KEYS[2], 0, -1)
local sum = 0
for i = 1, #shares do
  sum = sum + tonumber(shares[i])
end
local amount = string.format('%d', sum)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', 'expired', 'refund_fen', amount,
  'refund_shares', #shares, 'closed_at', ARGV[1])
redis.call('SREM', KEYS[3], m[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*',
  'type', 'rp_refund', 'packet', m[1], 'sender', m[5], 'amount_fen', amount,
  'shares', #shares, 'ts', ARGV[1])
return {'ok', amount, #shares, m[4], m[5]}
