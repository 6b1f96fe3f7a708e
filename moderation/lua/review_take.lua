-- Remove one held item and return it: of concurrent takes of one item, one gets it.
-- KEYS[1] review stream (field "item": the item's JSON)
-- ARGV[1] item id ("<ms>-<seq>")
-- Returns the item's JSON, or false when it is not queued (any more).
-- The stream stays when empty, so its last id keeps later ids from reusing old ones.
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #rows == 0 then
  return false
end
redis.call('XDEL', KEYS[1], ARGV[1])
local fields = rows[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'item' then
    return fields[i + 1]
  end
end
return false
