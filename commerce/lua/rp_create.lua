-- Create a red packet: its record, its pre-split shares, its place in the room's open set.
-- KEYS[1] packet hash
-- KEYS[2] shares list
-- KEYS[3] room's open-packet set
-- KEYS[4] room's ledger stream
-- KEYS[5] room's set of every packet id (retention reaches the packets through it)
-- ARGV[1] ledger maxlen (approximate)
-- ARGV[2] n: how many ARGV after this one are record fields and values
-- ARGV[3 .. 2+n] field, value, ... of the record (id, room_id, sender, total_fen, count,
--         split, created_at, opens_at, expires_at, [condition])
-- ARGV[3+n ..] the shares in fen, in the order they will be popped
-- Returns 1 when created, 0 when the id was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local n = tonumber(ARGV[2])
local rec = {}
for i = 3, 2 + n, 2 do
  rec[ARGV[i]] = ARGV[i + 1]
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'status', 'open')
if KEYS[5] then
  redis.call('SADD', KEYS[5], rec['id'])
end
-- Pushed in chunks: unpack() of thousands of arguments can exceed Lua's C stack.
local shares = {}
for i = 3 + n, #ARGV do
  shares[#shares + 1] = ARGV[i]
  if #shares == 500 then
    redis.call('RPUSH', KEYS[2], unpack(shares))
    shares = {}
  end
end
if #shares > 0 then
  redis.call('RPUSH', KEYS[2], unpack(shares))
end
redis.call('SADD', KEYS[3], rec['id'])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[1], '*',
  'type', 'rp_created', 'packet', rec['id'], 'sender', rec['sender'],
  'total_fen', rec['total_fen'], 'count', rec['count'], 'split', rec['split'],
  'ts', rec['created_at'])
return 1
