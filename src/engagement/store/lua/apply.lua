-- Apply one scored event to one candidate. KEYS: profile, dedupe zset, caps hash, contributions.
-- ARGV from the script's first argument (see read_config): messageId, t, receivedAt, points,
-- pillar (e|a|i), channel, event, daily cap (0 = none), dedupe window seconds.
-- Returns {'scored', before, after (snapshot)}, {'duplicate'|'capped', current snapshot} or
-- {'redirect', target}; before: 's␟g␟score' of the state just before the event, at its instant
-- (all a score record needs of it: sums are not formatted twice).
local P, D, K, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cfg, n = read_config()
local argv = ARGV
local mid, t, recv, w = argv[n], tonumber(argv[n + 1]), argv[n + 2], tonumber(argv[n + 3])
local pillar, channel, event = argv[n + 4], argv[n + 5], argv[n + 6]
local cap = tonumber(argv[n + 7])

local p = load(P)
-- a merged id answers replays of what it saw before the merge, and redirects everything else
if p.m then
  if call('ZSCORE', D, mid) then return {'duplicate', encode(p, cfg)} end
  return {'redirect', p.m}
end
if call('ZADD', D, 'NX', recv, mid) == 0 then return {'duplicate', encode(p, cfg)} end

if cap > 0 then
  local day = floor(t / 86400)
  local field = format('%d', day) .. '|' .. event
  local count = call('HINCRBY', K, field, 1)
  if count > cap then
    call('HINCRBY', K, field, -1)
    call('ZREMRANGEBYSCORE', D, '-inf', '(' .. fmt(tonumber(recv) - tonumber(argv[n + 8])))
    return {'capped', encode(p, cfg)}
  end
  if count == 1 and call('HLEN', K) > 64 then
    -- keep the last ~9 days of counters: older buckets only matter for very late events
    local fields = call('HKEYS', K)
    for _, f in ipairs(fields) do
      local d = tonumber(string.match(f, '^(-?%d+)|'))
      if d and d < day - 9 then call('HDEL', K, f) end
    end
  end
end

local h, scale, tiers = cfg.h, cfg.scale, cfg.tiers
decay_to(p, t, h)
local score = score_of(p.r, scale)
p.g = tier_after_decay(p.g, score, tiers)
local before = text(p, 's', p.s) .. '\31' .. text(p, 'g', p.g) .. '\31' .. int(score)
local x = w * 2 ^ (-(p.t - t) / h)
p.r = p.r + x
p[pillar] = p[pillar] + x
p.ch[channel] = (p.ch[channel] or 0) + x
p.s = p.s + 1
p.v = cfg.version
score = score_of(p.r, scale)
p.g = tier_move(p.g, score, tiers)
local after = save(P, p, cfg, score)
-- the window is a lower bound: trimming every 16th write keeps at most 15 older ids around
if p.s % 16 == 0 then
  call('ZREMRANGEBYSCORE', D, '-inf', '(' .. fmt(tonumber(recv) - tonumber(argv[n + 8])))
end
-- the contribution keeps t and the points as the store sent them (exact texts of the numbers)
local item = argv[n + 1] .. '\31' .. argv[n + 3] .. '\31' .. pillar .. '\31' .. esc(channel) ..
             '\31' .. esc(event) .. '\31' .. esc(mid)
if call('LPUSH', C, item) > cfg.keep then
  call('LTRIM', C, 0, cfg.keep - 1)
end
return {'scored', before, after}
