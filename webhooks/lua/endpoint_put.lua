-- Replaces an endpoint's record if it still exists (a delete wins over an update).
-- KEYS[1] endpoints hash, KEYS[2] their version counter
-- ARGV[1] endpoint id, ARGV[2] its JSON
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
