-- Shared by every candidate script (prepended at load time). Mirrors engagement.scoring and
-- engagement.tiers: same formulas, same libm calls (pow, exp, floor), so Python and Lua agree.
-- ARGV[1] is the config, one string joined by \31: h, scale, version, keep, enter_1, exit_1, ...
-- (one pre-encoded argument instead of a dozen); the script's own arguments start at ARGV[2].
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

local function save(key, p)
  local args = {'t', fmt(p.t), 'r', fmt(p.r), 'e', fmt(p.e), 'a', fmt(p.a), 'i', fmt(p.i),
                's', p.s, 'g', p.g}
  if p.v then table.insert(args, 'v'); table.insert(args, p.v) end
  if p.m then table.insert(args, 'm'); table.insert(args, p.m) end
  for c, v in pairs(p.ch) do table.insert(args, 'c:' .. c); table.insert(args, fmt(v)) end
  redis.call('HSET', key, unpack(args))
end

-- snapshot: 't␟r␟e␟a␟i␟s␟g␟score␟l␟v␟m␟ch1␟v1...' (␟ = \31); '' for absent values.
-- One string, not an array: the client decodes one bulk reply instead of ~15.
local function encode(p, cfg)
  local out = {p.t and fmt(p.t) or '', fmt(p.r), fmt(p.e), fmt(p.a), fmt(p.i), tostring(p.s),
               tostring(p.g), tostring(score_of(p.r, cfg.scale)), p.t and fmt(p.t) or '',
               p.v or '', p.m or ''}
  for c, v in pairs(p.ch) do table.insert(out, c); table.insert(out, fmt(v)) end
  return table.concat(out, '\31')
end

local function contribution(t, w, pillar, channel, event, mid)
  return table.concat({fmt(t), fmt(w), pillar, channel, event, mid}, '\31')
end
