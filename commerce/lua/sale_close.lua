-- End a sale that is still open now (its room ended): ends_at = now.
-- KEYS[1] sale hash
-- KEYS[2] room's sales (sorted set by ends_at)
-- KEYS[3] room's ledger stream
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] ledger maxlen (approximate)
-- Returns 1 when closed, 0 when unknown or over already.
local ends = redis.call('HGET', KEYS[1], 'ends_at')
if not ends or tonumber(ends) <= tonumber(ARGV[1]) then
  return 0
end
local id = redis.call('HGET', KEYS[1], 'id')
redis.call('HSET', KEYS[1], 'ends_at', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[1], id)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
  'type', 'sale_closed', 'sale', id, 'ends_at', ARGV[1], 'ts', ARGV[1])
return 1
