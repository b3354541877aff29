-- Take ids out of a tenant's idle-anonymous index, each only if it is still idle. KEYS: the
-- index (zset id -> latest event time). ARGV: the instant (epoch s), then the ids.
-- Returns how many left it.
local key, before, n = KEYS[1], tonumber(ARGV[1]), 0
for k = 2, #ARGV do
  local t = redis.call('ZSCORE', key, ARGV[k])
  if t and tonumber(t) < before then n = n + redis.call('ZREM', key, ARGV[k]) end
end
return n
