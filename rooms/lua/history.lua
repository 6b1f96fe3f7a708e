-- Read the danmaku log's head and the candidate item lists for a (re)joining client.
-- KEYS[1] danmaku meta hash (seq, epoch)
-- KEYS[2] danmaku history zset (payload scored by seq)
-- ARGV[1] candidate epoch, used only when the log has none yet
-- ARGV[2] the client's since, or "" for none
-- ARGV[3] the client's epoch, or "" for none
-- ARGV[4] limit of the "latest" list
-- Returns {seq, epoch, after_since, latest}; Python picks one with in_window().
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  -- A new epoch is a new numbering: entries left from an older one would collide.
  redis.call('DEL', KEYS[2])
end
local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local after = {}
-- Only worth reading when the client is in this epoch; in_window() has the last word.
if ARGV[2] ~= '' and ARGV[3] == meta[2] then
  after = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')
end
local latest = {}
local limit = tonumber(ARGV[4])
if limit > 0 then
  latest = redis.call('ZRANGE', KEYS[2], -limit, -1)
end
return {tonumber(meta[1]) or 0, meta[2], after, latest}
