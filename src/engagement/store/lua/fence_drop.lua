-- Drop erasure fences past their time. KEYS: the fences hash. ARGV: the token the caller holds
-- ('' for none), a new change token (field '#', set when one is dropped), the number of fields
-- the caller holds the hash to have, then fence id, value, ... — each dropped only if it still
-- has that value (a DELETE may have raised it again meanwhile). With no fence left the hash goes.
-- Returns {1 if the caller's token and field count were current and every pair dropped (its
-- view, less those, is the hash now) else 0, the hash's number of fields now}.
local key = KEYS[1]
local was, size = redis.call('HGET', key, '#'), redis.call('HLEN', key)
local dropped = 0
for j = 4, #ARGV, 2 do
  if redis.call('HGET', key, ARGV[j]) == ARGV[j + 1] then
    dropped = dropped + redis.call('HDEL', key, ARGV[j])
  end
end
local left = size - dropped
if dropped > 0 then
  if left == 1 and redis.call('HEXISTS', key, '#') == 1 then
    redis.call('DEL', key)
    left = 0
  elseif left > 0 then
    left = left + redis.call('HSET', key, '#', ARGV[2])
  end
end
local current = 0
if was and was == ARGV[1] and size == tonumber(ARGV[3]) and dropped == (#ARGV - 3) / 2 then
  current = 1
end
return {current, left}
