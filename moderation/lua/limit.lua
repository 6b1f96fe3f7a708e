-- One step of a generic GCRA limit; a refused request records nothing.
-- KEYS[1] theoretical arrival time in µs (string)
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] emission interval in µs
-- ARGV[3] burst
-- ARGV[4] cost of this request in units of the burst
-- Returns {reason, retry_after_ms}: reason "ok" | "rate"
local now_us = tonumber(ARGV[1]) * 1000
local step = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
tat = math.max(tat or now_us, now_us) + tonumber(ARGV[4]) * step
local allow_at = tat - tonumber(ARGV[3]) * step
if allow_at > now_us then
  return {'rate', math.ceil((allow_at - now_us) / 1000)}
end
local ttl = math.max(1, math.ceil((tat - now_us) / 1000))
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', string.format('%d', ttl))
return {'ok', 0}
