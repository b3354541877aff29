-- Rank updates into one group of tier sets of one tenant (prepended to rank.lua and
-- rank_jobs.lua). A group: KEYS[first] a sequence hash, KEYS[first + 1 .. last] one sorted set
-- per tier (lowest first). Updates: ARGV[from .. to] as (candidate, sequence, tier, rank key)*,
-- tier 1-based; 0 = remove and keep the sequence; -1 = erase: remove everything, no compare.
-- Sequence compare-and-set: an update older than (or equal to) the stored one changes nothing.
-- An applied update removes the candidate from every other tier set, not only when its tier
-- changed: while scorers with different tier lists run side by side (a rolling rules change), one
-- can leave a candidate in a set the other does not know, and the next update repairs that.
local call, tonumber = redis.call, tonumber

-- A tier set of SKIPLIST_AT members or more is kept a skiplist. Redis stores a small sorted set
-- as a listpack (up to zset-max-listpack-entries, 128 by default), where moving a member is
-- linear: ZADD of a member at a new score cost 1.8 us at 8 members, 7.4-7.7 us at 127, against
-- 0.7-0.8 us in a skiplist (bench/tier_sets.py; docs/design.md §5 "Tier sets"). A tier
-- set's members move on every event, so a job's tier sets of a few dozen candidates made the
-- largest single cost of an event naming a job. A member longer than zset-max-listpack-value (64 bytes)
-- converts the set for good (until a restart loads it back as a listpack, when the next member
-- it gains converts it again); PROBE is longer than any candidate id, so it is never a member.
local SKIPLIST_AT = 16
local PROBE = string.rep('~', 4096)
local function keep_skiplist(set)
  if call('ZCARD', set) >= SKIPLIST_AT and call('OBJECT', 'ENCODING', set) ~= 'skiplist' then
    call('ZADD', set, 0, PROBE)
    call('ZREM', set, PROBE)
  end
end

-- Returns how many updates were applied.
local function rank_group(first, last, from, to)
  local seqs, applied = KEYS[first], 0
  for at = from, to, 4 do
    local cand, seq, tier = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
    if tier < 0 then
      for j = first + 1, last do call('ZREM', KEYS[j], cand) end
      call('HDEL', seqs, cand)
      applied = applied + 1
    elseif seq > tonumber(call('HGET', seqs, cand) or '-1') then
      local set = KEYS[first + tier]
      for j = first + 1, last do
        if j ~= first + tier then call('ZREM', KEYS[j], cand) end  -- ZADD moves it in its own
      end
      call('HSET', seqs, cand, ARGV[at + 1])
      if tier > 0 and call('ZADD', set, ARGV[at + 3], cand) == 1 then keep_skiplist(set) end
      applied = applied + 1
    end
  end
  return applied
end
