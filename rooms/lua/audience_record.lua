-- Apply one audience batch of a room in one step (every key carries the room's hash tag).
-- KEYS[1] hash: the room's totals
-- KEYS[2] hash: the counters of the batch's minute
-- KEYS[3 ..] bitmaps, one per set in the batch, in ARGV's order
-- ARGV[1] retention ms (every touched key expires that long after this write)
-- ARGV[2] number of counters c, then c pairs: name, amount
-- then per set: name, number of offsets m, m offsets (interned uids)
-- A bit set for the first time counts once in the minute's "new:<set>".
local ttl = ARGV[1]
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
  i = i + 2
end
local k = 3
while i <= #ARGV do
  local name, m = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local fresh = 0
  for j = i, i + m - 1 do
    if redis.call('SETBIT', KEYS[k], ARGV[j], 1) == 0 then
      fresh = fresh + 1
    end
  end
  i = i + m
  if fresh > 0 then
    redis.call('HINCRBY', KEYS[2], 'new:' .. name, fresh)
  end
  redis.call('PEXPIRE', KEYS[k], ttl)
  k = k + 1
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
