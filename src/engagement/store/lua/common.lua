-- Shared by every candidate script (prepended at load time). Mirrors engagement.model.scoring and
-- engagement.model.tiers: same formulas, same libm calls (pow, exp, floor), so Python and Lua agree.
-- The config (h, scale, version, keep, enter_1, exit_1, ...) is either baked in by the store (a
-- block after this file redefines read_config to return constants: nothing to parse per call, the
-- script's arguments start at ARGV[1]) or, without that block, ARGV[1] joined by \31 (arguments
-- from ARGV[2]). cfg.tiers is flat: {enter_1, exit_1, enter_2, exit_2, ...}.
--
-- Cost notes (every call runs this whole chunk): globals are read once into locals below, strings
-- are joined with one `..` chain (one string built, no table), numbers that did not change keep
-- their stored text and are not written again, integers are formatted with '%d'.
local call, format, floor, exp, tonumber, tostring, pairs, unpack, sub, find, gsub =
  redis.call, string.format, math.floor, math.exp, tonumber, tostring, pairs, unpack, string.sub,
  string.find, string.gsub

-- A client's string (an id, a channel or event name) inside a reply joined by \31: \27 and \31
-- in it become \27e and \27u, so no string can split the reply (engagement.model.score_views.unescape
-- undoes it). Most strings have neither: two plain finds (memchr; a pattern with a character
-- class costs 5x more on a 32-byte messageId), and the string itself.
local function esc(s)
  if not (find(s, '\31', 1, true) or find(s, '\27', 1, true)) then return s end
  return (gsub(gsub(s, '\27', '\27e'), '\31', '\27u'))
end

-- Exact text of a number: '%.17g', which for an integer below 1e15 in magnitude (but -0) is its
-- digits, written much faster by '%d'.
local function fmt(x)
  if x == floor(x) and x < 1e15 and x > -1e15 and (x ~= 0 or 1 / x > 0) then
    return format('%d', x)
  end
  return format('%.17g', x)
end

-- tostring(x) (Lua's '%.14g'), with the same '%d' shortcut for integers below 1e14.
local function int(x)
  if x == floor(x) and x < 1e14 and x > -1e14 and (x ~= 0 or 1 / x > 0) then
    return format('%d', x)
  end
  return tostring(x)
end

-- tostring(x) given s = fmt(x) (or x's stored text): s itself for an integer below 1e14.
local function short(x, s)
  if x == floor(x) and x < 1e14 and x > -1e14 then return s end
  return tostring(x)
end

local function read_config()
  local parts = {}
  for x in string.gmatch(ARGV[1], '[^\31]+') do parts[#parts + 1] = x end
  local cfg = {h = tonumber(parts[1]), scale = tonumber(parts[2]), version = parts[3],
               keep = tonumber(parts[4]), tiers = {}}
  for j = 5, #parts do cfg.tiers[j - 4] = tonumber(parts[j]) end
  return cfg, 2
end

local function score_of(r, scale)
  if r < 0 then r = 0 end
  local s = floor(100 * (1 - exp(-r / scale)) + 0.5)
  if s > 100 then s = 100 end
  if s < 1 then s = 1 end
  return s
end

local function tier_after_decay(k, s, tiers)
  local n = #tiers / 2
  if k > n then k = n end
  for j = k, 2, -1 do
    if s >= tiers[2 * j] then return j end
  end
  return 1
end

local function tier_move(k, s, tiers)
  for j = #tiers / 2, k + 1, -1 do
    if s >= tiers[2 * j - 1] then return j end
  end
  return tier_after_decay(k, s, tiers)
end

-- profile hash fields: t ref time, r total, e/a/i pillars, c:<channel>, s sequence, g tier (1-based),
-- v rules version, m merged_into (the last event time is t: only scored events move it).
-- p.raw and p.old keep each stored field's text and value: a value that did not change keeps its
-- stored text (which is fmt of it: every writer formats with fmt or Redis's '%.17g') and is not
-- written again.
local function load(key)
  local flat = call('HGETALL', key)
  local ch, raw, old = {}, {}, {}
  local p = {r = 0, e = 0, a = 0, i = 0, s = 0, g = 1, ch = ch, raw = raw, old = old}
  for n = 1, #flat, 2 do
    local f, v = flat[n], flat[n + 1]
    raw[f] = v
    if f == 'm' or f == 'v' then p[f] = v
    else
      local x = tonumber(v)
      old[f] = x
      if #f > 1 then ch[sub(f, 3)] = x  -- 'c:<channel>' (every other field is one letter)
      else p[f] = x end
    end
  end
  return p
end

-- The text of field f whose value is now x (its stored text if x did not change).
local function text(p, f, x)
  local old = p.old[f]
  if x == old and (x ~= 0 or 1 / x == 1 / old) then return p.raw[f] end  -- 0 and -0: by sign
  return fmt(x)
end

local function decay_to(p, t, h)
  if p.t == nil then p.t = t; return end
  if t <= p.t then return end
  local f = 2 ^ (-(t - p.t) / h)
  p.r, p.e, p.a, p.i = p.r * f, p.e * f, p.a * f, p.i * f
  local ch = p.ch
  for c, v in pairs(ch) do ch[c] = v * f end
  p.t = t
end

-- Writes the profile (HSET of the fields whose text changed); returns its snapshot (see encode),
-- built from the same strings so each value is formatted once. score: score_of(p.r, cfg.scale),
-- when the caller has it.
local function save(key, p, cfg, score)
  local raw = p.raw
  local t, r, e, a, i = text(p, 't', p.t), text(p, 'r', p.r), text(p, 'e', p.e),
                        text(p, 'a', p.a), text(p, 'i', p.i)
  local s, g, v, m = text(p, 's', p.s), text(p, 'g', p.g), p.v, p.m
  local args = {false, false, false, false, false, false, false, false, false, false, false, false,
                false, false, false, false}
  local na = 0
  if t ~= raw.t then args[1] = 't'; args[2] = t; na = 2 end
  if r ~= raw.r then args[na + 1] = 'r'; args[na + 2] = r; na = na + 2 end
  if e ~= raw.e then args[na + 1] = 'e'; args[na + 2] = e; na = na + 2 end
  if a ~= raw.a then args[na + 1] = 'a'; args[na + 2] = a; na = na + 2 end
  if i ~= raw.i then args[na + 1] = 'i'; args[na + 2] = i; na = na + 2 end
  if s ~= raw.s then args[na + 1] = 's'; args[na + 2] = s; na = na + 2 end
  if g ~= raw.g then args[na + 1] = 'g'; args[na + 2] = g; na = na + 2 end
  if v and v ~= raw.v then args[na + 1] = 'v'; args[na + 2] = v; na = na + 2 end
  if m and m ~= raw.m then args[na + 1] = 'm'; args[na + 2] = m; na = na + 2 end
  local tail = ''
  for c, x in pairs(p.ch) do
    local f = 'c:' .. c
    local xs = text(p, f, x)
    if xs ~= raw[f] then args[na + 1] = f; args[na + 2] = xs; na = na + 2 end
    tail = tail .. '\31' .. esc(c) .. '\31' .. xs
  end
  if na > 0 then call('HSET', key, unpack(args, 1, na)) end
  return t .. '\31' .. r .. '\31' .. e .. '\31' .. a .. '\31' .. i .. '\31' .. short(p.s, s) ..
         '\31' .. short(p.g, g) .. '\31' .. int(score or score_of(p.r, cfg.scale)) .. '\31' .. t ..
         '\31' .. (v and esc(v) or '') .. '\31' .. (m and esc(m) or '') .. tail
end

-- snapshot: 't␟r␟e␟a␟i␟s␟g␟score␟l␟v␟m␟ch1␟v1...' (␟ = \31); '' for absent values; v, m and
-- the channel names escaped (esc).
-- One string, not an array: the client decodes one bulk reply instead of ~15.
local function encode(p, cfg)
  local t = p.t and text(p, 't', p.t) or ''
  local tail = ''
  for c, x in pairs(p.ch) do tail = tail .. '\31' .. esc(c) .. '\31' .. text(p, 'c:' .. c, x) end
  return t .. '\31' .. text(p, 'r', p.r) .. '\31' .. text(p, 'e', p.e) .. '\31' ..
         text(p, 'a', p.a) .. '\31' .. text(p, 'i', p.i) .. '\31' .. int(p.s) .. '\31' ..
         int(p.g) .. '\31' .. int(score_of(p.r, cfg.scale)) .. '\31' .. t .. '\31' ..
         (p.v and esc(p.v) or '') .. '\31' .. (p.m and esc(p.m) or '') .. tail
end

