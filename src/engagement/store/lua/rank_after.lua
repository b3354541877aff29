-- The members of one tier set right after a leaderboard cursor, read by position (a keyset read
-- that costs the same however many candidates tie with the cursor). KEYS: the tier set. ARGV:
-- cursor member, cursor rank key, how many. Returns the next members with their rank keys, in
-- leaderboard order (rank key, then member, both descending), or false when the cursor's member
-- is not in the set at that rank key any more (the caller then reads by rank key).
local set, member = KEYS[1], ARGV[1]
local score = redis.call('ZSCORE', set, member)
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return false end
local at = redis.call('ZREVRANK', set, member)
return redis.call('ZRANGE', set, at + 1, at + tonumber(ARGV[3]), 'REV', 'WITHSCORES')
