-- Adds an endpoint unless the deployment has max_endpoints already.
-- KEYS[1] endpoints hash, KEYS[2] their version counter
-- ARGV[1] endpoint id, ARGV[2] its JSON, ARGV[3] max_endpoints
-- Returns 1 when added, 0 at the cap.
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
