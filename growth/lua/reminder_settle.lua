-- Record what became of a taken reminder (growth.reminders.Mark).
-- KEYS[1] hash: the job's markers, KEYS[2] hash: the user's credits
-- ARGV[1] uid, ARGV[2] template, ARGV[3] mark: s sent, u unknown (credit spent),
-- r refused (template's credits cleared), f failed (credit back, marker kept),
-- - retry (credit back, marker removed)
local mark = ARGV[3]
if mark == 'r' then
  redis.call('HSET', KEYS[2], ARGV[2], 0)
elseif mark == 'f' or mark == '-' then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
if mark == '-' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], mark)
end
return 1
