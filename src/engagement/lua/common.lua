-- Shared by every candidate script (prepended at load time). Mirrors engagement.scoring and
-- engagement.tiers: same formulas, same libm calls (pow, exp, floor), so Python and Lua agree.
-- The config (h, scale, version, keep, enter_1, exit_1, ...) is either baked in by the store (a
-- block after this file redefines read_config to return constants: nothing to parse per call, the
-- script's arguments start at ARGV[1]) or, without that block, ARGV[1] joined by \31 (arguments
-- from ARGV[2]).
local function fmt(x) return string.format('%.17g', x) end

local function read_config()
  local parts = {}
  for x in string.gmatch(ARGV[1], '[^\31]+') do parts[#parts + 1] = x end
  local cfg = {h = tonumber(parts[1]), scale = tonumber(parts[2]), version = parts[3],
               keep = tonumber(parts[4]), tiers = {}}
  for j = 1, (#parts - 4) / 2 do
    cfg.tiers[j] = {tonumber(parts[3 + 2 * j]), tonumber(parts[4 + 2 * j])}
  end
  return cfg, 2
end

local function score_of(r, scale)
  local positive = r
  if positive < 0 then positive = 0 end
  local s = math.floor(100 * (1 - math.exp(-positive / scale)) + 0.5)
  if s > 100 then s = 100 end
  if s < 1 then s = 1 end
  return s
end

local function tier_after_decay(k, s, tiers)
  if k > #tiers then k = #tiers end
  for j = k, 2, -1 do
    if s >= tiers[j][2] then return j end
  end
  return 1
end

local function tier_move(k, s, tiers)
  for j = #tiers, k + 1, -1 do
    if s >= tiers[j][1] then return j end
  end
  return tier_after_decay(k, s, tiers)
end

-- profile hash fields: t ref time, r total, e/a/i pillars, c:<channel>, s sequence, g tier (1-based),
-- v rules version, m merged_into (the last event time is t: only scored events move it)
local function load(key)
  local flat = redis.call('HGETALL', key)
  local p = {r = 0, e = 0, a = 0, i = 0, s = 0, g = 1, ch = {}}
  for n = 1, #flat, 2 do
    local f, v = flat[n], flat[n + 1]
    if string.sub(f, 1, 2) == 'c:' then p.ch[string.sub(f, 3)] = tonumber(v)
    elseif f == 'm' or f == 'v' then p[f] = v
    else p[f] = tonumber(v) end
  end
  return p
end

local function decay_to(p, t, h)
  if p.t == nil then p.t = t; return end
  if t <= p.t then return end
  local f = 2 ^ (-(t - p.t) / h)
  p.r, p.e, p.a, p.i = p.r * f, p.e * f, p.a * f, p.i * f
  for c, v in pairs(p.ch) do p.ch[c] = v * f end
  p.t = t
end

-- Writes the whole profile; returns its snapshot (see encode), built from the same formatted
-- strings so each value is formatted once.
local function save(key, p, cfg)
  local t, r = fmt(p.t), fmt(p.r)
  local e, a, i = fmt(p.e), fmt(p.a), fmt(p.i)
  local args = {'t', t, 'r', r, 'e', e, 'a', a, 'i', i, 's', p.s, 'g', p.g}
  local out = {t, r, e, a, i, tostring(p.s), tostring(p.g), tostring(score_of(p.r, cfg.scale)), t,
               p.v or '', p.m or ''}
  local na, no = #args, #out
  if p.v then args[na + 1] = 'v'; args[na + 2] = p.v; na = na + 2 end
  if p.m then args[na + 1] = 'm'; args[na + 2] = p.m; na = na + 2 end
  for c, v in pairs(p.ch) do
    local x = fmt(v)
    args[na + 1] = 'c:' .. c; args[na + 2] = x; na = na + 2
    out[no + 1] = c; out[no + 2] = x; no = no + 2
  end
  redis.call('HSET', key, unpack(args))
  return table.concat(out, '\31')
end

-- snapshot: 't␟r␟e␟a␟i␟s␟g␟score␟l␟v␟m␟ch1␟v1...' (␟ = \31); '' for absent values.
-- One string, not an array: the client decodes one bulk reply instead of ~15.
local function encode(p, cfg)
  local t = p.t and fmt(p.t) or ''
  local out = {t, fmt(p.r), fmt(p.e), fmt(p.a), fmt(p.i), tostring(p.s), tostring(p.g),
               tostring(score_of(p.r, cfg.scale)), t, p.v or '', p.m or ''}
  local no = #out
  for c, v in pairs(p.ch) do out[no + 1] = c; out[no + 2] = fmt(v); no = no + 2 end
  return table.concat(out, '\31')
end

-- The state just before an event is added, as the fields that differ from the snapshot after it
-- (same t, l, m, other pillars and channels): 'r␟pillar␟pillar value␟channel␟channel value␟s␟g␟
-- score␟v', channel value '' when the channel had no sum yet.
local function encode_before(p, pillar, channel, cfg)
  local cv = p.ch[channel]
  return table.concat({fmt(p.r), pillar, fmt(p[pillar]), channel, cv and fmt(cv) or '',
                       tostring(p.s), tostring(p.g), tostring(score_of(p.r, cfg.scale)), p.v or ''},
                      '\31')
end

local function contribution(t, w, pillar, channel, event, mid)
  return table.concat({fmt(t), fmt(w), pillar, channel, event, mid}, '\31')
end
