-- Lower one erasure fence if it is still the one its request raised. KEYS: the fences hash.
-- ARGV: fence id, the request's requestedAt. A later DELETE of the same id raised it again
-- (another requestedAt): that one stays up until its own request is reached.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
