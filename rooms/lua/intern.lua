-- Intern uids to dense integers (0, 1, 2, ...): once each, never reassigned.
-- KEYS[1] hash: uid -> its integer
-- KEYS[2] counter: integers handed out so far
-- ARGV    uids
-- Returns their integers, in ARGV's order.
local known = redis.call('HMGET', KEYS[1], unpack(ARGV))
local out = {}
for i = 1, #ARGV do
  local n = known[i]
  if not n then
    n = redis.call('INCR', KEYS[2]) - 1
    redis.call('HSET', KEYS[1], ARGV[i], n)
  end
  out[i] = tonumber(n)
end
return out
