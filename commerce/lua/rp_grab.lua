-- Grab one share of a red packet (the checks and their order: commerce/redpacket_store.py).
-- KEYS[1] packet hash
-- KEYS[2] shares list
-- KEYS[3] claims hash (uid -> fen)
-- KEYS[4] claim-order list (uids)
-- KEYS[5] eligible set
-- KEYS[6] room's open-packet set
-- KEYS[7] room's ledger stream
-- ARGV[1] uid
-- ARGV[2] now (Unix ms, the caller's clock)
-- ARGV[3] ledger maxlen (approximate)
-- Returns {outcome, amount or "", left, done 0|1, luckiest uid or "", luckiest fen or ""}
local m = redis.call('HMGET', KEYS[1],
  'id', 'status', 'opens_at', 'expires_at', 'condition', 'lucky_fen')
if not m[1] then
  return {'not_found', '', 0, 0, '', ''}
end
local uid = ARGV[1]
local first = redis.call('HGET', KEYS[3], uid)
if first then
  return {'already_grabbed', first, redis.call('LLEN', KEYS[2]), 0, '', ''}
end
local now = tonumber(ARGV[2])
if now < tonumber(m[3]) then
  return {'not_open', '', redis.call('LLEN', KEYS[2]), 0, '', ''}
end
if now >= tonumber(m[4]) or m[2] == 'expired' then
  return {'expired', '', redis.call('LLEN', KEYS[2]), 0, '', ''}
end
if m[5] and redis.call('SISMEMBER', KEYS[5], uid) == 0 then
  return {'forbidden', '', redis.call('LLEN', KEYS[2]), 0, '', ''}
end
local amount = redis.call('LPOP', KEYS[2])
if not amount then
  return {'empty', '', 0, 0, '', ''}
end
redis.call('HSET', KEYS[3], uid, amount)
redis.call('RPUSH', KEYS[4], uid)
-- The luckiest is kept as claims come in: strictly larger replaces, so ties stay earliest.
if not m[6] or tonumber(amount) > tonumber(m[6]) then
  redis.call('HSET', KEYS[1], 'lucky_uid', uid, 'lucky_fen', amount)
end
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[3], '*',
  'type', 'rp_claim', 'packet', m[1], 'uid', uid, 'amount_fen', amount, 'ts', ARGV[2])
local left = redis.call('LLEN', KEYS[2])
if left > 0 then
  return {'ok', amount, left, 0, '', ''}
end
redis.call('HSET', KEYS[1], 'status', 'done')
redis.call('SREM', KEYS[6], m[1])
local lucky = redis.call('HMGET', KEYS[1], 'lucky_uid', 'lucky_fen')
redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[3], '*',
  'type', 'rp_done', 'packet', m[1], 'luckiest', lucky[1], 'amount_fen', lucky[2],
  'ts', ARGV[2])
return {'ok', amount, 0, 1, lucky[1], lucky[2]}
