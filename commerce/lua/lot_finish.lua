-- Store a lottery's draw result, once: only a lottery in "drawing" takes it.
-- KEYS[1] lottery hash
-- KEYS[2] entries set
-- KEYS[3] room's prior-winner set
-- KEYS[4] room's undrawn-lottery set
-- KEYS[5] room's ledger stream
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] ledger maxlen (approximate)
-- ARGV[3] winners as a JSON array
-- ARGV[4] proof as a JSON object
-- ARGV[5] unused prizes
-- ARGV[6 ..] the winners' uids
-- Returns 1 when stored, 0 when the lottery was not in "drawing" (or unknown).
local m = redis.call('HMGET', KEYS[1], 'id', 'status', 'prize_kind', 'prize_fen')
if m[2] ~= 'drawing' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'drawn', 'drawn_at', ARGV[1],
  'result_winners', ARGV[3], 'proof', ARGV[4], 'unused', ARGV[5])
redis.call('HDEL', KEYS[1], 'lease_until')
local winners = {}
for i = 6, #ARGV do
  winners[#winners + 1] = ARGV[i]
  redis.call('SADD', KEYS[3], ARGV[i])
end
redis.call('SREM', KEYS[4], m[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[2], '*',
  'type', 'lot_drawn', 'lottery', m[1], 'winners', table.concat(winners, ','),
  'entries', redis.call('SCARD', KEYS[2]), 'unused', ARGV[5],
  'prize_kind', m[3], 'prize_fen', m[4] or '', 'ts', ARGV[1])
return 1
