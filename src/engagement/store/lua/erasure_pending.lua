-- Record (or extend) a candidate's pending erasure before any of its keys is deleted, so that a
-- retry publishes the same records. KEYS: pending-erasure hash, profile, merged-ids set. ARGV: TTL
-- in seconds, then ids merged into the candidate through other merged ids. The hash holds `s`
-- (the candidate's last sequence, never lowered) and one `i:<id>` field per merged id; each call
-- adds to it and restarts its TTL. Nothing to remember (no entry yet, no sequence, no merged id:
-- a retry would publish the same records without one) writes nothing.
-- Returns {last sequence, every merged id recorded}.
local pending = KEYS[1]
local seq = math.max(tonumber(redis.call('HGET', pending, 's') or '0'),
                     tonumber(redis.call('HGET', KEYS[2], 's') or '0'))
local merged = redis.call('SMEMBERS', KEYS[3])
if seq == 0 and #merged == 0 and #ARGV < 2 and redis.call('EXISTS', pending) == 0 then
  return {0, {}}
end
redis.call('HSET', pending, 's', seq)
for _, id in ipairs(merged) do
  redis.call('HSET', pending, 'i:' .. id, 1)
end
for at = 2, #ARGV do redis.call('HSET', pending, 'i:' .. ARGV[at], 1) end
redis.call('EXPIRE', pending, ARGV[1])
local ids = {}
for _, name in ipairs(redis.call('HKEYS', pending)) do
  if string.sub(name, 1, 2) == 'i:' then ids[#ids + 1] = string.sub(name, 3) end
end
return {seq, ids}
