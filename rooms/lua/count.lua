-- Count views or comments of a room: bump the counter, add the uids to the HyperLogLog.
-- KEYS[1] stats hash
-- KEYS[2] HyperLogLog (unique viewers, or participants)
-- KEYS[3] room hash (read only: its status)
-- ARGV[1] counter field (pv or comments)
-- ARGV[2 ..] one uid per view or comment (repeats allowed)
redis.call('HINCRBY', KEYS[1], ARGV[1], #ARGV - 1)
redis.call('PFADD', KEYS[2], unpack(ARGV, 2))
-- A tick's batch can land after the room ended and its keys got their retention: a key
-- it creates then takes the stats hash's TTL (else the record's), never none.
if redis.call('HGET', KEYS[3], 'status') == 'ended' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then ttl = redis.call('PTTL', KEYS[3]) end
  if ttl > 0 then
    for i = 1, 2 do
      if redis.call('PTTL', KEYS[i]) == -1 then redis.call('PEXPIRE', KEYS[i], ttl) end
    end
  end
end
return 1
