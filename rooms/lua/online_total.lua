-- Sum a room's viewer counts over unexpired nodes, without writing.
-- KEYS[1] online hash: node -> "count:expires_at_ms"
-- ARGV    none
-- Returns the sum; expired entries are skipped (online.lua removes them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 2, #fields, 2 do
  local c, exp = string.match(fields[i], '^(%d+):(%d+)$')
  if exp ~= nil and tonumber(exp) > now then
    total = total + tonumber(c)
  end
end
return total
