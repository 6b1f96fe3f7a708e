-- Apply the per-product part of one audience batch (every key carries the room's hash tag).
-- KEYS[1] set: the room's products (at most ARGV[2])
-- KEYS[2] hash: "<item>|<counter>" -> amount
-- KEYS[3 ..] bitmaps, one per (item, step) in ARGV's order
-- ARGV[1] retention ms, ARGV[2] most products a room counts, ARGV[3] number of items;
-- then per item: item, c, c pairs (counter, amount), s, then per step: m, m offsets.
-- An item that would make the room count more products than allowed is skipped whole.
local ttl, most = ARGV[1], tonumber(ARGV[2])
local i, k = 4, 3
for _ = 1, tonumber(ARGV[3]) do
  local item, c = ARGV[i], tonumber(ARGV[i + 1])
  local ok = redis.call('SISMEMBER', KEYS[1], item) == 1
  if not ok and redis.call('SCARD', KEYS[1]) < most then
    redis.call('SADD', KEYS[1], item)
    ok = true
  end
  i = i + 2
  for _ = 1, c do
    if ok then
      redis.call('HINCRBY', KEYS[2], item .. '|' .. ARGV[i], ARGV[i + 1])
    end
    i = i + 2
  end
  local s = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, s do
    local m = tonumber(ARGV[i])
    if ok then
      for j = i + 1, i + m do
        redis.call('SETBIT', KEYS[k], ARGV[j], 1)
      end
      redis.call('PEXPIRE', KEYS[k], ttl)
    end
    i = i + 1 + m
    k = k + 1
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
