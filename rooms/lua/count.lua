-- Count one view or one comment of a room: bump the counter, add the uid to the HyperLogLog.
-- KEYS[1] stats hash
-- KEYS[2] HyperLogLog (unique viewers, or participants)
-- ARGV[1] counter field (pv or comments)
-- ARGV[2] uid
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PFADD', KEYS[2], ARGV[2])
return 1
