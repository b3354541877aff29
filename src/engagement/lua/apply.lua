-- Apply one scored event to one candidate. KEYS: profile, dedupe zset, caps hash, contributions.
-- ARGV from the script's first argument (see read_config): messageId, t, receivedAt, points,
-- pillar (e|a|i), channel, event, daily cap (0 = none), dedupe window seconds.
-- Returns {'scored', before (encode_before), after (snapshot)}, {'duplicate'|'capped', current
-- snapshot} or {'redirect', target}.
local P, D, K, C = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local cfg, n = read_config()
local mid, t, recv, w = ARGV[n], tonumber(ARGV[n + 1]), ARGV[n + 2], tonumber(ARGV[n + 3])
local pillar, channel, event = ARGV[n + 4], ARGV[n + 5], ARGV[n + 6]
local cap = tonumber(ARGV[n + 7])

local p = load(P)
-- a merged id answers replays of what it saw before the merge, and redirects everything else
if p.m then
  if redis.call('ZSCORE', D, mid) then return {'duplicate', encode(p, cfg)} end
  return {'redirect', p.m}
end
if redis.call('ZADD', D, 'NX', recv, mid) == 0 then return {'duplicate', encode(p, cfg)} end

local function trim_dedupe()
  local oldest = tonumber(recv) - tonumber(ARGV[n + 8])
  redis.call('ZREMRANGEBYSCORE', D, '-inf', '(' .. fmt(oldest))
end

if cap > 0 then
  local day = math.floor(t / 86400)
  local field = string.format('%d', day) .. '|' .. event
  local count = redis.call('HINCRBY', K, field, 1)
  if count > cap then
    redis.call('HINCRBY', K, field, -1)
    trim_dedupe()
    return {'capped', encode(p, cfg)}
  end
  if count == 1 and redis.call('HLEN', K) > 64 then
    -- keep the last ~9 days of counters: older buckets only matter for very late events
    local fields = redis.call('HKEYS', K)
    for _, f in ipairs(fields) do
      local d = tonumber(string.match(f, '^(-?%d+)|'))
      if d and d < day - 9 then redis.call('HDEL', K, f) end
    end
  end
end

decay_to(p, t, cfg.h)
p.g = tier_after_decay(p.g, score_of(p.r, cfg.scale), cfg.tiers)
local before = encode_before(p, pillar, channel, cfg)
local x = w * 2 ^ (-(p.t - t) / cfg.h)
p.r = p.r + x
p[pillar] = p[pillar] + x
p.ch[channel] = (p.ch[channel] or 0) + x
p.s = p.s + 1
p.v = cfg.version
p.g = tier_move(p.g, score_of(p.r, cfg.scale), cfg.tiers)
local after = save(P, p, cfg)
-- the window is a lower bound: trimming every 16th write keeps at most 15 older ids around
if p.s % 16 == 0 then trim_dedupe() end
if redis.call('LPUSH', C, contribution(t, w, pillar, channel, event, mid)) > cfg.keep then
  redis.call('LTRIM', C, 0, cfg.keep - 1)
end
return {'scored', before, after}
