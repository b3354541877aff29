-- Merge step 1, on the source candidate: mark merged_into (once) and return its frozen state.
-- KEYS: profile, caps hash, contributions, merged-ids set, job profiles hash. ARGV after the config
-- (ARGV[1]): target candidate id.
-- Returns {'taken' (marked now) | 'frozen' (already marked: a replay) | 'conflict' (merged into
-- another id), snapshot, caps (flat), contributions, ids merged into it, job profiles (flat)}.
-- Idempotent.
local P, K, C, M, J = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local cfg, n = read_config()
local target = ARGV[n]
local p = load(P)
local outcome = 'frozen'
if p.m and p.m ~= target then
  outcome = 'conflict'
elseif not p.m then
  outcome = 'taken'
  p.m = target
  p.s = p.s + 1
  redis.call('HSET', P, 'm', target, 's', p.s)
end
return {outcome, encode(p, cfg), redis.call('HGETALL', K), redis.call('LRANGE', C, 0, -1),
        redis.call('SMEMBERS', M), redis.call('HGETALL', J)}
