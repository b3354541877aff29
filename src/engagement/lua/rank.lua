-- Rank updates of candidates of one tenant, on the tenant's keys only. KEYS: sequence hash, then
-- one sorted set per tier (lowest first). ARGV: (candidate, sequence, tier, rank key)*, tier
-- 1-based; 0 = remove and keep the sequence; -1 = erase: remove everything, no compare.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
-- The sequence hash holds '<sequence>.<tier>' (tier 0: in no set), so an update removes the
-- candidate only from the set it is in (none when its tier did not change: ZADD moves its score);
-- a plain '<sequence>' (written before the tier was kept) means any set: removed from all.
-- Returns how many updates were applied.
local call, format, match, tonumber = redis.call, string.format, string.match, tonumber
local seqs, last = KEYS[1], #KEYS
local applied = 0
for at = 1, #ARGV, 4 do
  local cand, seq, tier = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if tier < 0 then
    for j = 2, last do call('ZREM', KEYS[j], cand) end
    call('HDEL', seqs, cand)
    applied = applied + 1
  else
    local stored = call('HGET', seqs, cand)
    local current, was = -1, 0  -- was: the set it is in (0: none, nil: unknown)
    if stored then
      local s, g = match(stored, '^(.-)%.(%d+)$')
      if s then current, was = tonumber(s), tonumber(g) else current, was = tonumber(stored), nil end
    end
    if seq > current then
      if was == nil then
        for j = 2, last do call('ZREM', KEYS[j], cand) end
      elseif was > 0 and was ~= tier then
        call('ZREM', KEYS[1 + was], cand)
      end
      call('HSET', seqs, cand, format('%d.%d', seq, tier))
      if tier > 0 then call('ZADD', KEYS[1 + tier], ARGV[at + 3], cand) end
      applied = applied + 1
    end
  end
end
return applied
