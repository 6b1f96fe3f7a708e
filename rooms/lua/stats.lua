-- Read a room's stats in one step (one slot: every key carries the room's hash tag).
-- KEYS[1] stats hash (pv, peak_online, comments, likes)
-- KEYS[2] HyperLogLog of unique viewers
-- KEYS[3] HyperLogLog of participants
-- Returns {pv, peak_online, comments, likes, uv, participants}, absent counters as false.
local counters = redis.call('HMGET', KEYS[1], 'pv', 'peak_online', 'comments', 'likes')
counters[5] = redis.call('PFCOUNT', KEYS[2])
counters[6] = redis.call('PFCOUNT', KEYS[3])
return counters
