-- Forget a pending erasure whose records Kafka acknowledged. KEYS: pending-erasure hash. ARGV:
-- the published sequence and number of merged ids. A concurrent erasure that recorded more ids
-- or a later sequence meanwhile keeps the entry: its records are not all published yet.
-- Returns 1 when the entry is gone, else 0.
local pending = KEYS[1]
local seq = tonumber(redis.call('HGET', pending, 's') or '0')
if seq <= tonumber(ARGV[1]) and redis.call('HLEN', pending) <= 1 + tonumber(ARGV[2]) then
  redis.call('DEL', pending)
  return 1
end
return 0
