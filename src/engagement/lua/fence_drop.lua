-- Drop erasure fences past their time. KEYS: the fences hash. ARGV: a new change token (field
-- '#', set when one is dropped), then fence id, value, ... — each dropped only if it still has
-- that value (a DELETE may have raised it again meanwhile). With no fence left the hash goes.
local key = KEYS[1]
local dropped = 0
for j = 2, #ARGV, 2 do
  if redis.call('HGET', key, ARGV[j]) == ARGV[j + 1] then
    dropped = dropped + redis.call('HDEL', key, ARGV[j])
  end
end
if dropped > 0 then
  local left = redis.call('HLEN', key)
  if left == 1 and redis.call('HEXISTS', key, '#') == 1 then
    redis.call('DEL', key)
  elseif left > 0 then
    redis.call('HSET', key, '#', ARGV[1])
  end
end
return dropped
