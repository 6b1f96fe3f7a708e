-- Take the right to draw a lottery under a lease: open and due (or forced) -> drawing, or
-- a drawing one whose lease ended. Entries are frozen from here on (enter needs "open").
-- KEYS[1] lottery hash
-- KEYS[2] entries set
-- KEYS[3] room's prior-winner set
-- ARGV[1] now (Unix ms, the caller's clock)
-- ARGV[2] lease in ms
-- ARGV[3] "1" to ignore draw_at (draw early), "0" not to
-- Returns {"ok", lease_until, record (flat, with the secret), entrants, prior winners}
--       | {"no"}
local m = redis.call('HMGET', KEYS[1], 'status', 'draw_at', 'lease_until')
local now = tonumber(ARGV[1])
if m[1] == 'open' then
  if ARGV[3] ~= '1' and now < tonumber(m[2]) then
    return {'no'}
  end
elseif m[1] ~= 'drawing' or now < tonumber(m[3]) then
  return {'no'}
end
local lease_until = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'drawing', 'lease_until', lease_until)
return {'ok', lease_until, redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2]),
  redis.call('SMEMBERS', KEYS[3])}
