-- Move the expiry of a room's audience keys to one moment (its end plus the retention).
-- KEYS    the room's keys (totals, bitmaps, minute hashes; one hash tag); absent ones
--         are skipped
-- ARGV[1] Unix ms at which they expire
for i = 1, #KEYS do
  redis.call('PEXPIREAT', KEYS[i], ARGV[1])
end
return #KEYS
