-- Rank update for one candidate, on the tenant's keys only. KEYS: sequence hash, then one sorted
-- set per tier (lowest first). ARGV: candidate, sequence, tier (1-based; 0 = remove and keep the
-- sequence; -1 = erase: remove everything, no compare), rank key.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
local cand, seq, tier = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if tier >= 0 then
  local current = tonumber(redis.call('HGET', KEYS[1], cand) or '-1')
  if seq <= current then return 0 end
end
for j = 2, #KEYS do redis.call('ZREM', KEYS[j], cand) end
if tier < 0 then
  redis.call('HDEL', KEYS[1], cand)
  return 1
end
redis.call('HSET', KEYS[1], cand, seq)
if tier > 0 then redis.call('ZADD', KEYS[1 + tier], ARGV[4], cand) end
return 1
