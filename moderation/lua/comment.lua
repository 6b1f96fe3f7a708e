-- Check one comment against the room cap, slow mode, repeat and the user's GCRA; record
-- it only when every rule passes (a refused comment writes nothing).
-- KEYS[1] room's inbound counter of the current second (string)
-- KEYS[2] user's comment state hash: tat (GCRA, µs), last (ms)
-- KEYS[3] user's recent texts zset: text key scored by when accepted (ms)
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] text key ("" = no repeat rule)
-- ARGV[3] GCRA emission interval in µs (0 = no rate rule)
-- ARGV[4] burst
-- ARGV[5] repeat window in ms (0 = off)
-- ARGV[6] slow mode in ms (0 = off)
-- ARGV[7] room cap per second (0 = off)
-- ARGV[8] least TTL of the user's state in ms
-- ARGV[9] TTL of the inbound counter in ms
-- Returns {reason, retry_after_ms}: reason "ok" | "room_cap" | "slow_mode" | "repeat" | "rate"
local now = tonumber(ARGV[1])
local text = ARGV[2]
local step = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local slow = tonumber(ARGV[6])
local cap = tonumber(ARGV[7])

if cap > 0 then
  local accepted = tonumber(redis.call('GET', KEYS[1]) or '0')
  if accepted >= cap then
    return {'room_cap', 1000 - now % 1000}
  end
end

local state = redis.call('HMGET', KEYS[2], 'tat', 'last')
local last = tonumber(state[2])
if slow > 0 and last and now - last < slow then
  return {'slow_mode', last + slow - now}
end

local check_repeat = window > 0 and text ~= ''
if check_repeat then
  local at = tonumber(redis.call('ZSCORE', KEYS[3], text))
  if at and now - at < window then
    return {'repeat', at + window - now}
  end
end

-- Whole µs: exact in a double up to 2^53, i.e. for any Unix ms this century.
local now_us = now * 1000
local tat = tonumber(state[1])
if step > 0 then
  tat = math.max(tat or now_us, now_us) + step
  local allow_at = tat - burst * step
  if allow_at > now_us then
    return {'rate', math.ceil((allow_at - now_us) / 1000)}
  end
end

-- Every rule passed: record the comment.
if cap > 0 and redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
end
local ttl = math.max(tonumber(ARGV[8]), slow, window)
redis.call('HSET', KEYS[2], 'last', string.format('%d', now))
if tat then
  redis.call('HSET', KEYS[2], 'tat', string.format('%d', tat))
  ttl = math.max(ttl, math.ceil((tat - now_us) / 1000))
end
redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl))
if check_repeat then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', now - window))
  redis.call('ZADD', KEYS[3], string.format('%d', now), text)
  redis.call('PEXPIRE', KEYS[3], string.format('%d', window))
end
return {'ok', 0}
