-- Extend an archive lease, only for its holder.
-- KEYS[1] the lease key
-- ARGV[1] the holder's token
-- ARGV[2] new time to live, ms
-- Returns 1 when extended, 0 when the caller no longer holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
