-- Rank updates of candidates of one tenant, on the tenant's keys only (rank_lib.lua). KEYS: the
-- sequence hash, then one sorted set per tier (lowest first). ARGV: (candidate, sequence, tier,
-- rank key)*. Returns how many updates were applied.
return rank_group(1, #KEYS, 1, #ARGV)
