-- Apply one scored event to one candidate. KEYS: profile, dedupe zset, caps hash, contributions.
-- ARGV after the config (ARGV[1]): messageId, t, receivedAt, points, pillar (e|a|i), channel,
-- event, daily cap (0 = none), dedupe window seconds.
-- Returns {outcome, before, after} (outcome scored|duplicate|capped) or {'redirect', target}.
local P, D, K, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cfg, n = read_config()
local mid, t, recv, w = ARGV[n], tonumber(ARGV[n + 1]), tonumber(ARGV[n + 2]), tonumber(ARGV[n + 3])
local pillar, channel, event = ARGV[n + 4], ARGV[n + 5], ARGV[n + 6]
local cap, window = tonumber(ARGV[n + 7]), tonumber(ARGV[n + 8])

local p = load(P)
if redis.call('ZSCORE', D, mid) then
  local snap = encode(p, cfg)
  return {'duplicate', snap, snap}
end
if p.m then return {'redirect', p.m} end

local function remember()
  redis.call('ZADD', D, recv, mid)
  redis.call('ZREMRANGEBYSCORE', D, '-inf', '(' .. fmt(recv - window))
end

if cap > 0 then
  local day = math.floor(t / 86400)
  local field = string.format('%d', day) .. '|' .. event
  local count = tonumber(redis.call('HGET', K, field) or '0')
  if count >= cap then
    remember()
    local snap = encode(p, cfg)
    return {'capped', snap, snap}
  end
  if redis.call('HINCRBY', K, field, 1) == 1 and redis.call('HLEN', K) > 64 then
    -- keep the last ~9 days of counters: older buckets only matter for very late events
    local fields = redis.call('HKEYS', K)
    for _, f in ipairs(fields) do
      local d = tonumber(string.match(f, '^(-?%d+)|'))
      if d and d < day - 9 then redis.call('HDEL', K, f) end
    end
  end
end
remember()

decay_to(p, t, cfg.h)
p.g = tier_after_decay(p.g, score_of(p.r, cfg.scale), cfg.tiers)
local before = encode(p, cfg)
local x = w * 2 ^ (-(p.t - t) / cfg.h)
p.r = p.r + x
p[pillar] = p[pillar] + x
p.ch[channel] = (p.ch[channel] or 0) + x
p.s = p.s + 1
p.v = cfg.version
p.g = tier_move(p.g, score_of(p.r, cfg.scale), cfg.tiers)
save(P, p)
redis.call('LPUSH', C, contribution(t, w, pillar, channel, event, mid))
redis.call('LTRIM', C, 0, cfg.keep - 1)
return {'scored', before, encode(p, cfg)}
