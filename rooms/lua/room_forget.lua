-- Delete the keys of a room that expired before it started (its record is gone).
-- KEYS[1] the room's record: nothing is deleted if it exists again (a recreated id)
-- KEYS[2..] the room's fixed keys (one hash tag); absent ones are skipped
-- Only keys without a TTL go: a room ended before it started had TTLs set by its end
-- (its money keys are kept for the refund window).
-- Returns how many keys were deleted.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local n = 0
for i = 2, #KEYS do
  if redis.call('PTTL', KEYS[i]) == -1 then
    n = n + redis.call('DEL', KEYS[i])
  end
end
return n
