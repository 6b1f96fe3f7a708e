-- Read a room's audience in one step (every key carries the room's hash tag).
-- KEYS[1] hash: totals
-- KEYS[2 .. 1+s] bitmaps of the s sets
-- KEYS[2+s] scratch key for intersections (deleted before returning)
-- KEYS[3+s ..] minute hashes
-- ARGV[1] s, ARGV[2] p, then p pairs of 1-based set indexes to intersect
-- Returns {totals as HGETALL, {uv per set}, {size per pair}, {HGETALL per minute}}.
local s, p = tonumber(ARGV[1]), tonumber(ARGV[2])
local uv = {}
for j = 1, s do
  uv[j] = redis.call('BITCOUNT', KEYS[1 + j])
end
local scratch = KEYS[2 + s]
local both = {}
for j = 1, p do
  local a, b = tonumber(ARGV[1 + 2 * j]), tonumber(ARGV[2 + 2 * j])
  redis.call('BITOP', 'AND', scratch, KEYS[1 + a], KEYS[1 + b])
  both[j] = redis.call('BITCOUNT', scratch)
end
redis.call('DEL', scratch)
local minutes = {}
for j = 3 + s, #KEYS do
  minutes[#minutes + 1] = redis.call('HGETALL', KEYS[j])
end
return {redis.call('HGETALL', KEYS[1]), uv, both, minutes}
