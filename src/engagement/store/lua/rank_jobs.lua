-- Rank updates of several jobs of one tenant in one call (rank_lib.lua, per job: the job's
-- sequence hash and tier sets are a group). KEYS: per job, its sequence hash then its tier sets
-- (lowest first). ARGV[1]: tier sets per job; then per job, its number of updates n and n times
-- (candidate, sequence, tier, rank key). Returns how many updates were applied.
local size, at, applied = tonumber(ARGV[1]) + 1, 2, 0
for first = 1, #KEYS, size do
  local n = tonumber(ARGV[at])
  applied = applied + rank_group(first, first + size - 1, at + 1, at + 4 * n)
  at = at + 1 + 4 * n
end
return applied
