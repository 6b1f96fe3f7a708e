-- Create a lottery: its record (with the secret) and its place in the room's undrawn set.
-- KEYS[1] lottery hash
-- KEYS[2] room's undrawn-lottery set
-- KEYS[3] room's ledger stream
-- KEYS[4] room's set of every lottery id (the room's end expires them through it)
-- ARGV[1] ledger maxlen (approximate)
-- ARGV[2 ..] field, value, ... of the record (id, room_id, prize_title, prize_kind,
--         [prize_fen], winners, cond_kind, [cond_password], [cond_minutes], draw_at,
--         created_at, commit, new_first, secret)
-- Returns 1 when created, 0 when the id was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local rec = {}
for i = 2, #ARGV, 2 do
  rec[ARGV[i]] = ARGV[i + 1]
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'status', 'open')
redis.call('SADD', KEYS[2], rec['id'])
redis.call('SADD', KEYS[4], rec['id'])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*',
  'type', 'lot_created', 'lottery', rec['id'], 'commit', rec['commit'],
  'winners', rec['winners'], 'prize_kind', rec['prize_kind'],
  'prize_fen', rec['prize_fen'] or '', 'draw_at', rec['draw_at'], 'ts', rec['created_at'])
return 1
