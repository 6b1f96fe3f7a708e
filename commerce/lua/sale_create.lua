-- Create a flash sale: its record with left = stock, its place in the room's sales.
-- KEYS[1] sale hash
-- KEYS[2] room's sales (sorted set by ends_at)
-- KEYS[3] room's ledger stream
-- ARGV[1] ledger maxlen (approximate)
-- ARGV[2 ..] field, value, ... of the record (id, room_id, title, sku, price_fen, stock,
--         limit, starts_at, ends_at, reserve_ms, created_at)
-- Returns 1 when created, 0 when the id was taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local rec = {}
for i = 2, #ARGV, 2 do
  rec[ARGV[i]] = ARGV[i + 1]
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'left', rec['stock'], 'reserved', 0, 'paid', 0, 'refunded', 0)
redis.call('ZADD', KEYS[2], rec['ends_at'], rec['id'])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*',
  'type', 'sale_created', 'sale', rec['id'], 'sku', rec['sku'], 'price_fen', rec['price_fen'],
  'stock', rec['stock'], 'limit', rec['limit'], 'starts_at', rec['starts_at'],
  'ends_at', rec['ends_at'], 'reserve_ms', rec['reserve_ms'], 'ts', rec['created_at'])
return 1
