-- Merge step 1, on the anonymous candidate: mark merged_into (once) and return its frozen state.
-- KEYS: profile, caps hash, contributions. ARGV after the config (ARGV[1]): target candidate id.
-- Returns {'frozen'|'conflict', snapshot, caps (flat), contributions}. Idempotent.
local P, K, C = KEYS[1], KEYS[2], KEYS[3]
local cfg, n = read_config()
local target = ARGV[n]
local p = load(P)
local outcome = 'frozen'
if p.m and p.m ~= target then
  outcome = 'conflict'
elseif not p.m then
  p.m = target
  p.s = p.s + 1
  redis.call('HSET', P, 'm', target, 's', p.s)
end
return {outcome, encode(p, cfg), redis.call('HGETALL', K), redis.call('LRANGE', C, 0, -1)}
