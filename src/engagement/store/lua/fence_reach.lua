-- Mark one erasure fence reached if it is still the one its request raised. KEYS: the fences
-- hash. ARGV: fence id, the request's requestedAt, the new value ('<requestedAt> <reachedAt>'),
-- a new change token (field '#': readers re-read the hash when it moved), the token the caller
-- holds ('' for none).
-- A later DELETE of the same id raised it again (another requestedAt): that one stays up.
-- Returns 1 (marked; the caller's token was current, so its view is), 0 (marked) or -1 (not).
local key = KEYS[1]
local was = redis.call('HGET', key, '#')
if redis.call('HGET', key, ARGV[1]) ~= ARGV[2] then return -1 end
redis.call('HSET', key, ARGV[1], ARGV[3], '#', ARGV[4])
if was and was == ARGV[5] then return 1 end
return 0
