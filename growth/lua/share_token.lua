-- Issue a share token unless the user holds the most a room allows (then: their newest).
-- KEYS[1] hash: token -> uid; KEYS[2] list: the user's tokens in the room
-- ARGV[1] token, ARGV[2] uid, ARGV[3] most tokens per user
-- Returns {token, 1} when stored, {newest held, 0} at the cap, {"", -1} on a collision.
local held = redis.call('LLEN', KEYS[2])
if held >= tonumber(ARGV[3]) and held > 0 then
  return {redis.call('LINDEX', KEYS[2], -1), 0}
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return {'', -1}
end
redis.call('RPUSH', KEYS[2], ARGV[1])
return {ARGV[1], 1}
