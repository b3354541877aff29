-- Forget a pending erasure whose records Kafka acknowledged. KEYS: pending-erasure hash. ARGV:
-- the published sequence and number of merged ids. A concurrent erasure that recorded more ids
-- or a later sequence meanwhile keeps the entry: its records are not all published yet. Fields:
-- `s`, one `i:<id>` per merged id, and `o` (the candidates an id erased on its own was merged
-- into) when there are any.
-- Returns 1 when the entry is gone, else 0.
local pending = KEYS[1]
local seq = tonumber(redis.call('HGET', pending, 's') or '0')
local fields = 1 + tonumber(ARGV[2]) + redis.call('HEXISTS', pending, 'o')
if seq <= tonumber(ARGV[1]) and redis.call('HLEN', pending) <= fields then
  redis.call('DEL', pending)
  return 1
end
return 0
