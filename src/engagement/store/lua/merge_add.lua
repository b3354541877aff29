-- Merge step 2, on the candidate the target resolves to: add the source's frozen state once
-- (exact, aligned at the later reference time) and record the source and the ids merged into it,
-- so a replay of any of their merges finds them here, however long the chain it follows.
-- KEYS: profile, merged-ids set, caps hash, contributions, job profiles hash, jobs left zset.
-- ARGV after the config (ARGV[1]): source id, nids, ids merged into the source*, t, r, e, a, i,
-- l, nch, (channel, value)*nch, ncaps, (field, count)*ncaps, njobs, (job, job profile)*njobs,
-- contributions...
-- Each job profile of the source is added to the candidate's of the same job (job_profile.lua,
-- exact like the sums), then the weakest jobs past JOB.keep are dropped.
-- Returns {'merged'|'duplicate', before, after} or {'redirect', target}; a merge that moved job
-- profiles: {'merged', before, after, job entries}; a duplicate of one: {'duplicate', before, after,
-- the jobs the candidate left (job_left) and the current states of those jobs (job_current)}, so
-- that the replayed record carries them.
local P, M, K, C, J, L = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local cfg, n = read_config()
local source = ARGV[n]
local p = load(P)
if p.m then return {'redirect', p.m} end
local new = redis.call('SADD', M, source)
local nids = tonumber(ARGV[n + 1])
for k = n + 2, n + 1 + nids do redis.call('SADD', M, ARGV[k]) end
n = n + 1 + nids  -- ARGV[n + 1] is now t
if new == 0 then
  local snap = encode(p, cfg)
  local at = n + 7 + 2 * tonumber(ARGV[n + 7]) + 1  -- the caps' count, then the jobs'
  at = at + 2 * tonumber(ARGV[at]) + 1
  local jobs = tonumber(ARGV[at]) > 0 and job_left(L, {}) or {}
  for k = 1, tonumber(ARGV[at]) do jobs[#jobs + 1] = job_current(J, ARGV[at + 2 * k - 1], cfg) end
  if #jobs > 0 then return {'duplicate', snap, snap, jobs} end
  return {'duplicate', snap, snap}
end
if ARGV[n + 1] == '' then
  local snap = encode(p, cfg)
  return {'merged', snap, snap}
end
local ft = tonumber(ARGV[n + 1])  -- ARGV[n + 6]: its last event time (= ft)
decay_to(p, ft, cfg.h)
p.g = tier_after_decay(p.g, score_of(p.r, cfg.scale), cfg.tiers)
local before = encode(p, cfg)
local f = 2 ^ (-(p.t - ft) / cfg.h)
p.r = p.r + tonumber(ARGV[n + 2]) * f
p.e = p.e + tonumber(ARGV[n + 3]) * f
p.a = p.a + tonumber(ARGV[n + 4]) * f
p.i = p.i + tonumber(ARGV[n + 5]) * f
local at = n + 7
for _ = 1, tonumber(ARGV[at]) do
  local c = ARGV[at + 1]
  p.ch[c] = (p.ch[c] or 0) + tonumber(ARGV[at + 2]) * f
  at = at + 2
end
at = at + 1
for _ = 1, tonumber(ARGV[at]) do
  redis.call('HINCRBY', K, ARGV[at + 1], tonumber(ARGV[at + 2]))
  at = at + 2
end
p.s = p.s + 1
p.v = cfg.version
p.g = tier_move(p.g, score_of(p.r, cfg.scale), cfg.tiers)
local after = save(P, p, cfg)
at = at + 1
local changed = {}
for _ = 1, tonumber(ARGV[at]) do
  local job, src = ARGV[at + 1], job_load(ARGV[at + 2])
  changed[job] = job_add(J, L, job, src.t, src.r, {e = src.e, a = src.a, i = src.i}, p.s, cfg)
  at = at + 2
end
local jobs = next(changed) and job_entries(changed, job_bound(J, L, p.s, cfg), p.s)
local items = redis.call('LRANGE', C, 0, -1)
for k = at + 1, #ARGV do table.insert(items, ARGV[k]) end
table.sort(items, function(x, y)
  return tonumber(string.match(x, '^[^\31]+')) > tonumber(string.match(y, '^[^\31]+'))
end)
redis.call('DEL', C)
for k = 1, math.min(#items, cfg.keep) do redis.call('RPUSH', C, items[k]) end
if jobs then return {'merged', before, after, jobs} end
return {'merged', before, after}
