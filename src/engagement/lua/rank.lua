-- Rank updates of candidates of one tenant, on the tenant's keys only. KEYS: sequence hash, then
-- one sorted set per tier (lowest first). ARGV: (candidate, sequence, tier, rank key)*, tier
-- 1-based; 0 = remove and keep the sequence; -1 = erase: remove everything, no compare.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
-- Returns how many updates were applied.
local applied = 0
for at = 1, #ARGV, 4 do
  local cand, seq, tier = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  local current = -1
  if tier >= 0 then current = tonumber(redis.call('HGET', KEYS[1], cand) or '-1') end
  if tier < 0 or seq > current then
    for j = 2, #KEYS do redis.call('ZREM', KEYS[j], cand) end
    if tier < 0 then
      redis.call('HDEL', KEYS[1], cand)
    else
      redis.call('HSET', KEYS[1], cand, seq)
      if tier > 0 then redis.call('ZADD', KEYS[1 + tier], ARGV[at + 3], cand) end
    end
    applied = applied + 1
  end
end
return applied
