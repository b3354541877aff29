-- Drop erasure fences past their time. KEYS: the fences hash. ARGV: fence id, value, ... — each
-- dropped only if it still has that value (a DELETE may have raised it again meanwhile).
local dropped = 0
for j = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[j]) == ARGV[j + 1] then
    dropped = dropped + redis.call('HDEL', KEYS[1], ARGV[j])
  end
end
return dropped
