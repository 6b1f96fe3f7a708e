-- Add subscribe-message credits, the user's total in the room kept at most a cap.
-- KEYS[1] hash: the user's credits (template -> n), KEYS[2] set: the room's subscribers
-- ARGV[1] uid, ARGV[2] most credits per user, ARGV[3 ..] template ids (one credit each)
-- Returns {added, template, n, template, n, ...} (templates with n > 0).
redis.call('SADD', KEYS[2], ARGV[1])
local total = 0
for _, n in ipairs(redis.call('HVALS', KEYS[1])) do
  total = total + tonumber(n)
end
local cap = tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV do
  if total >= cap then
    break
  end
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
  total = total + 1
  added = added + 1
end
local out = {added}
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  if tonumber(flat[i + 1]) > 0 then
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
  end
end
return out
