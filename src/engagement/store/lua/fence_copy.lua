-- Copy erasure fences into a fences hash (a rebuild taking over the fences of the store it
-- replaces: engagement.store.erasure_fence.copy_fences). KEYS: the fences hash. ARGV: a new change
-- token, then (fence id, value)*, values as the hash holds them ('<requestedAt>[ <reachedAt>]',
-- fixed-width UTC times, so their text orders as their instants).
-- A fence is written where the hash has none of that id or one of an earlier request (a later
-- DELETE of the same id, or one it cannot read); the token moves when one was. Returns how many
-- were written.
local key, written = KEYS[1], 0
for at = 2, #ARGV, 2 do
  local field, value = ARGV[at], ARGV[at + 1]
  local held = redis.call('HGET', key, field)
  local asked = string.match(value, '^%S+')  -- an unreadable value (no instant) is not copied
  local since = held and string.match(held, '^%S+')  -- one held unreadable is older than any
  if asked and (not since or asked > since) then
    redis.call('HSET', key, field, value)
    written = written + 1
  end
end
if written > 0 then redis.call('HSET', key, '#', ARGV[1]) end
return written
