-- Drop a room from the global list of rooms with sales, only if its score is still stale.
-- (A sale created meanwhile raised the score first, which keeps the room listed.)
-- KEYS[1] the global sale-rooms sorted set (the only key: safe on Redis Cluster)
-- ARGV[1] room id
-- ARGV[2] cutoff: drop only when the room's score is below it
-- Returns 1 when dropped, else 0.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) < tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
