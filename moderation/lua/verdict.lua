-- Count one moderated comment of a room and sum the counts of the window.
-- KEYS[1] hash: "t<second>" / "r<second>" -> comments / refused comments in that second
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] window length in whole seconds (at least 1)
-- ARGV[3] "1" when the comment was refused, else "0"
-- Returns {total, refused} over the buckets from now's second - window + 1 on.
local span = tonumber(ARGV[2])
local second = math.floor(tonumber(ARGV[1]) / 1000)
local first = second - span + 1
local s = string.format('%d', second)
redis.call('HINCRBY', KEYS[1], 't' .. s, 1)
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[1], 'r' .. s, 1)
end
local total, refused = 0, 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local kind, at = string.sub(fields[i], 1, 1), tonumber(string.sub(fields[i], 2))
  if at < first then
    redis.call('HDEL', KEYS[1], fields[i])
  elseif kind == 't' then
    total = total + tonumber(fields[i + 1])
  else
    refused = refused + tonumber(fields[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], span * 1000)
return {total, refused}
