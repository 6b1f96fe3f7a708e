-- Takes up to ARGV[3] chain heads due by ARGV[1] and leases them until ARGV[2]: another
-- process sees them again only once the lease has run out (its holder died).
-- KEYS[1] the endpoint's due set
-- ARGV[1] now (ms), ARGV[2] lease end (ms), ARGV[3] limit
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
return ids
