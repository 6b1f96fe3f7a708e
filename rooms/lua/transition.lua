-- Apply one lifecycle action as a compare-and-set of the room's status.
-- KEYS[1] room hash
-- KEYS[2] the room's ledger stream (same {room} slot), read only when ARGV[5] is set
-- KEYS[3..] when the action ends the room: its hot keys (ARGV[9] of them), then its money
--         keys (ARGV[10]); all carry the room's hash tag
-- ARGV[1] target status
-- ARGV[2] now (Unix ms), stamped on updated_at
-- ARGV[3] timestamp field the action stamps too, or "" for none
-- ARGV[4] "1" when the action starts the room: it no longer expires (PERSIST)
-- ARGV[5] ledger event type written with the transition (room_started...), or ""
-- ARGV[6] ledger maxlen (approximate)
-- ARGV[7] ms the hot keys outlive the end, or "" for no retention
-- ARGV[8] ms the money keys and the room record outlive the end (the refund window: a
--         refund checks who may make it against the room's anchor)
-- ARGV[9] number of hot keys, ARGV[10] number of money keys
-- ARGV[11] the room's order index (a sorted set of order ids, one of the money keys) or ""
-- ARGV[12] prefix of an order's key (+ its id)
-- ARGV[13] the room's sale index (sorted set of sale ids) or ""
-- ARGV[14] prefix of a sale's key (+ its id); ARGV[15] space-separated suffixes of its
--          other keys (":holds :idem")
-- ARGV[16] the room's set of every red packet id or ""; ARGV[17] prefix of a packet's key;
--          ARGV[18] space-separated suffixes of its other keys
-- ARGV[19] number G of key groups (rooms.retention.KeyGroup), then 5 ARGV each: index,
--          read, prefix, space-separated suffixes, ttl class
-- ARGV[20 + 5G ..] the statuses the action may start from
-- Returns {"ok", field, value, ...} | {"not_found"} | {"conflict", status}
--
-- The orders and sales are reached through their indexes rather than KEYS: their names
-- are only known here, and they carry the room's hash tag, so they are on this slot.
-- PEXPIREAT from the end's time makes a second run (a retried end) set the same moments.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return {'not_found'}
end
local groups = tonumber(ARGV[19]) or 0
local allowed = false
for i = 20 + 5 * groups, #ARGV do
  if ARGV[i] == status then
    allowed = true
    break
  end
end
if not allowed then
  return {'conflict', status}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
end
if ARGV[4] == '1' then
  redis.call('PERSIST', KEYS[1])
end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[5], 'ts', ARGV[2])
end
-- Read before the expiries: an end stamped a retention ago (a test's clock) drops the
-- record at once.
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, 'ok')
if ARGV[7] ~= '' then
  local now = tonumber(ARGV[2])
  local hot_at = now + tonumber(ARGV[7])
  local money_at = now + tonumber(ARGV[8])
  local nh, nm = tonumber(ARGV[9]), tonumber(ARGV[10])
  -- The groups first: a deadline already past deletes a key at once, and their indexes
  -- are among the fixed keys below.
  local extend = {}
  for g = 0, groups - 1 do
    local b = 20 + 5 * g
    local index, read, prefix, ttl = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 4]
    local ids
    if read == 'smembers' then
      ids = redis.call('SMEMBERS', index)
    elseif read == 'hvals' then
      ids = redis.call('HVALS', index)
    elseif read == 'lrange' then
      ids = redis.call('LRANGE', index, 0, -1)
    elseif read == 'zrange' then
      ids = redis.call('ZRANGE', index, 0, -1)
    else
      -- hkeys:<p>: the fields that start with p
      local p = string.sub(read, 7)
      ids = {}
      for _, f in ipairs(redis.call('HKEYS', index)) do
        if string.sub(f, 1, #p) == p then
          table.insert(ids, string.sub(f, #p + 1))
        end
      end
    end
    local seen, latest = {}, 0
    for _, id in ipairs(ids) do
      if not seen[id] then
        seen[id] = true
        local key = prefix .. id
        local at = hot_at
        if ttl == 'money' then
          at = money_at
        elseif ttl == 'prize' then
          local kind = redis.call('HGET', key, 'prize_kind')
          if kind == 'cash' or kind == 'coupon' then
            at = money_at
          end
        elseif ttl == 'ends_at' then
          -- Usable until its end: it must not vanish before that.
          at = math.max(tonumber(redis.call('HGET', key, 'ends_at') or '0') or 0, hot_at)
          latest = math.max(latest, at)
        end
        redis.call('PEXPIREAT', key, at)
        for suffix in string.gmatch(ARGV[b + 3], '%S+') do
          redis.call('PEXPIREAT', key .. suffix, at)
        end
      end
    end
    if latest > money_at then
      table.insert(extend, {index, latest})
    end
  end
  redis.call('PEXPIREAT', KEYS[1], money_at)
  for i = 3, 2 + nh do
    redis.call('PEXPIREAT', KEYS[i], hot_at)
  end
  for i = 3 + nh, 2 + nh + nm do
    redis.call('PEXPIREAT', KEYS[i], money_at)
  end
  if ARGV[5] ~= '' then
    redis.call('PEXPIREAT', KEYS[2], money_at)
  end
  if ARGV[11] ~= '' then
    for _, id in ipairs(redis.call('ZRANGE', ARGV[11], 0, -1)) do
      redis.call('PEXPIREAT', ARGV[12] .. id, money_at)
    end
  end
  if ARGV[13] ~= '' then
    for _, id in ipairs(redis.call('ZRANGE', ARGV[13], 0, -1)) do
      local sale = ARGV[14] .. id
      redis.call('PEXPIREAT', sale, money_at)
      for suffix in string.gmatch(ARGV[15], '%S+') do
        redis.call('PEXPIREAT', sale .. suffix, money_at)
      end
    end
  end
  if ARGV[16] ~= '' then
    for _, id in ipairs(redis.call('SMEMBERS', ARGV[16])) do
      local packet = ARGV[17] .. id
      redis.call('PEXPIREAT', packet, money_at)
      for suffix in string.gmatch(ARGV[18], '%S+') do
        redis.call('PEXPIREAT', packet .. suffix, money_at)
      end
    end
  end
  for _, e in ipairs(extend) do
    redis.call('PEXPIREAT', e[1], e[2])
  end
end
return record
