-- Act on a claimed job only while the caller's lease is the current one.
-- KEYS[1] sorted set of jobs; ARGV[1] job, ARGV[2] the caller's lease end,
-- ARGV[3] "finish" (remove the job) or a new score (extend the lease, or retry then)
-- Returns 1 when done, 0 when the lease is no longer the caller's.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == 'finish' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 1
