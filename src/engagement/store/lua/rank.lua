-- Rank updates of candidates of one tenant, on the tenant's keys only. KEYS: sequence hash, then
-- one sorted set per tier (lowest first). ARGV: (candidate, sequence, tier, rank key)*, tier
-- 1-based; 0 = remove and keep the sequence; -1 = erase: remove everything, no compare.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
-- An applied update removes the candidate from every other tier set, not only when its tier
-- changed: while scorers with different tier lists run side by side (a rolling rules change), one
-- can leave a candidate in a set the other does not know, and the next update repairs that.
-- Returns how many updates were applied.
local call, tonumber = redis.call, tonumber
local seqs, last = KEYS[1], #KEYS
local applied = 0
for at = 1, #ARGV, 4 do
  local cand, seq, tier = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if tier < 0 then
    for j = 2, last do call('ZREM', KEYS[j], cand) end
    call('HDEL', seqs, cand)
    applied = applied + 1
  elseif seq > tonumber(call('HGET', seqs, cand) or '-1') then
    for j = 2, last do
      if j ~= 1 + tier then call('ZREM', KEYS[j], cand) end  -- ZADD moves it in its own set
    end
    call('HSET', seqs, cand, ARGV[at + 1])
    if tier > 0 then call('ZADD', KEYS[1 + tier], ARGV[at + 3], cand) end
    applied = applied + 1
  end
end
return applied
