-- Count views or comments of a room: bump the counter, add the uids to the HyperLogLog.
-- KEYS[1] stats hash
-- KEYS[2] HyperLogLog (unique viewers, or participants)
-- ARGV[1] counter field (pv or comments)
-- ARGV[2 ..] one uid per view or comment (repeats allowed)
redis.call('HINCRBY', KEYS[1], ARGV[1], #ARGV - 1)
redis.call('PFADD', KEYS[2], unpack(ARGV, 2))
return 1
