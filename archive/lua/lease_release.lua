-- Drop an archive lease, only for its holder.
-- KEYS[1] the lease key
-- ARGV[1] the holder's token
-- Returns 1 when dropped, 0 when the caller did not hold it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
