-- Mark one erasure fence reached if it is still the one its request raised. KEYS: the fences
-- hash. ARGV: fence id, the request's requestedAt, the new value ('<requestedAt> <reachedAt>'),
-- a new change token (field '#': readers re-read the hash when it moved).
-- A later DELETE of the same id raised it again (another requestedAt): that one stays up.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], '#', ARGV[4])
end
return 0
