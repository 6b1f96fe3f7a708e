-- Take one credit for a reminder job and mark the user pending, in one step.
-- KEYS[1] hash: the job's markers (uid -> state), KEYS[2] hash: the user's credits
-- ARGV[1] uid, ARGV[2 ..] template ids in order of preference
-- Returns the template taken, or false (already marked, or no credit: nothing written).
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return false
end
for i = 2, #ARGV do
  local n = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if n > 0 then
    redis.call('HINCRBY', KEYS[2], ARGV[i], -1)
    redis.call('HSET', KEYS[1], ARGV[1], 'p')
    return ARGV[i]
  end
end
return false
