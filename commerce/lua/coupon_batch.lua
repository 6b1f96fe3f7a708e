-- Create a coupon batch unless its scope holds the most it may.
-- KEYS[1] batch hash, KEYS[2] the scope's batch list
-- ARGV[1] most batches per scope, ARGV[2..] the record's field, value pairs ('id' first)
-- Returns 1 when created, 0 at the cap, -1 when the id exists.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
if redis.call('LLEN', KEYS[2]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'issued', 0, unpack(ARGV, 2))
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
