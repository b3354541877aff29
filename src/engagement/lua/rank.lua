-- Rank updates of candidates of one tenant, on the tenant's keys only. KEYS: sequence hash, then
-- one sorted set per tier (lowest first). ARGV: (candidate, sequence, tier, rank key)*, tier
-- 1-based; 0 = remove and keep the sequence; -1 = erase: remove everything, no compare.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
-- A candidate is in at most one of the tier sets: when ZADD only moves its score in its new
-- tier's set (it was there already), it is in no other, so the other sets are left alone (a
-- candidate whose tier did not change costs three calls instead of one per tier set).
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
    call('HSET', seqs, cand, ARGV[at + 1])
    local set = KEYS[1 + tier]
    if tier == 0 or call('ZADD', set, ARGV[at + 3], cand) == 1 then
      for j = 2, last do
        if j ~= 1 + tier then call('ZREM', KEYS[j], cand) end
      end
    end
    applied = applied + 1
  end
end
return applied
