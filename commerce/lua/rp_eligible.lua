-- Mark a uid as having met a red packet's condition.
-- KEYS[1] packet hash
-- KEYS[2] eligible set
-- ARGV[1] uid
-- Returns 1, or 0 for an unknown packet (no key is created for it).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
