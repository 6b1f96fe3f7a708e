-- Attribute one open of a share token (the rule of growth.invites.judge, one step).
-- KEYS[1] hash tokens (token -> uid), KEYS[2] hash tree (invitee -> depth\tinviter\troot\tms),
-- KEYS[3] hash kids (inviter -> n), KEYS[4] set opened (inviter\topener), KEYS[5] hash depths,
-- KEYS[6] hash kids2 (inviter -> second-level invitees)
-- ARGV[1] token, ARGV[2] invitee uid, ARGV[3] now ms
-- Returns {outcome, inviter, depth}: outcome recorded, repeat, self, loop or unknown.
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if not owner then
  return {'unknown', '', 0}
end
local invitee = ARGV[2]
if owner == invitee then
  return {'self', owner, 0}
end
redis.call('SADD', KEYS[4], owner .. '\t' .. invitee)
if redis.call('HEXISTS', KEYS[2], invitee) == 1 then
  return {'repeat', owner, 0}
end
local depth, root, grand = 1, owner, nil
local up = redis.call('HGET', KEYS[2], owner)
if up then
  local d, g, r = string.match(up, '^(%d+)\t([^\t]*)\t([^\t]*)\t')
  depth, root, grand = tonumber(d) + 1, r, g
end
if root == invitee then
  return {'loop', owner, 0}
end
redis.call('HSET', KEYS[2], invitee,
  depth .. '\t' .. owner .. '\t' .. root .. '\t' .. ARGV[3])
redis.call('HINCRBY', KEYS[3], owner, 1)
redis.call('HINCRBY', KEYS[5], depth, 1)
if grand then
  redis.call('HINCRBY', KEYS[6], grand, 1)
end
return {'recorded', owner, depth}
