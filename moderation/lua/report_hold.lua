-- Mark an open report's comment held: 1 for the first caller, 0 after (or when not open).
-- KEYS[1] the room's reports hash
-- ARGV[1] report id
if not redis.call('HGET', KEYS[1], 'i:' .. ARGV[1]) then
  return 0
end
return redis.call('HSETNX', KEYS[1], 'h:' .. ARGV[1], 1)
