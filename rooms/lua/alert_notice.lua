-- Store an event alert raised outside the room's rules (no lease: any process may),
-- at most once per rule and subject within a quiet time.
-- KEYS[1] the quiet marker of (rule, subject), KEYS[2] alert ids (list, newest first),
-- KEYS[3] alerts (hash: id -> JSON)
-- ARGV[1] quiet ms, ARGV[2] retention ms, ARGV[3] alerts kept at most,
-- ARGV[4] the alert's id, ARGV[5] its JSON
-- Returns 1 when stored, 0 when one of the same rule and subject is within its quiet time.
if not redis.call('SET', KEYS[1], ARGV[4], 'NX', 'PX', ARGV[1]) then
  return 0
end
if redis.call('HEXISTS', KEYS[3], ARGV[4]) == 0 then
  redis.call('LPUSH', KEYS[2], ARGV[4])
end
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
local keep = tonumber(ARGV[3])
while redis.call('LLEN', KEYS[2]) > keep do
  redis.call('HDEL', KEYS[3], redis.call('RPOP', KEYS[2]))
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
