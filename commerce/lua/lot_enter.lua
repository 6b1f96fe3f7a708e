-- Enter a uid into an open lottery, once.
-- KEYS[1] lottery hash
-- KEYS[2] entries set
-- ARGV[1] uid
-- ARGV[2] now (Unix ms, the caller's clock)
-- Returns {outcome, entries}: outcome "ok" | "already" | "closed" | "not_found"
local m = redis.call('HMGET', KEYS[1], 'status', 'draw_at')
if not m[1] then
  return {'not_found', 0}
end
if m[1] ~= 'open' or tonumber(ARGV[2]) >= tonumber(m[2]) then
  return {'closed', redis.call('SCARD', KEYS[2])}
end
local added = redis.call('SADD', KEYS[2], ARGV[1])
return {added == 1 and 'ok' or 'already', redis.call('SCARD', KEYS[2])}
