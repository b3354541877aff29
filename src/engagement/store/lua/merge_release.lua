-- Undo merge step 1 whose step 2 found no candidate to land on (a merge racing on another worker
-- closed a loop, or the target's chain grew too long): the source is its own candidate again.
-- Only the job that marked the source calls it, before anything of the source was added anywhere.
-- KEYS: profile. ARGV after the config (ARGV[1]): the target step 1 marked.
-- Returns {'released' | 'kept' (not marked with that target), snapshot}. Idempotent.
local P = KEYS[1]
local cfg, n = read_config()
local p = load(P)
if p.m ~= ARGV[n] then return {'kept', encode(p, cfg)} end
p.m = nil
p.s = p.s + 1
redis.call('HDEL', P, 'm')
redis.call('HSET', P, 's', p.s)
return {'released', encode(p, cfg)}
