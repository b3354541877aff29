"""The Lua scripts of the webhook delivery queue (``services.notifier.delivery_queue``).

Each keeps the queue's three indexes (due, lane, age: the keys are listed in ``delivery_queue``'s
docstring) in step with the delivery hashes; the comment above each says what it takes as
``KEYS`` and ``ARGV`` and what it returns, and ``DeliveryQueue`` builds those lists and reads the
replies. ``CLAIM`` and ``COMPLETE`` share one ``claim`` function, so an attempt's outcome and the
lane's next claim are one call.
"""

from __future__ import annotations

# KEYS: due, then hash, lane and age of each delivery; ARGV: now, then id, endpoint, msg_id, key
# and body of each. A delivery id seen before (pending or finished) is skipped.
ENQUEUE = """
local queued = 0
for i = 0, (#KEYS - 1) / 3 - 1 do
  local k, a = 2 + 3 * i, 2 + 5 * i
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], 'endpoint', ARGV[a + 1], 'msg_id', ARGV[a + 2],
      'key', ARGV[a + 3], 'body', ARGV[a + 4], 'attempt', 0, 'status', 'pending',
      'created_ms', ARGV[1])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[a])
    redis.call('ZADD', KEYS[k + 1], ARGV[1], ARGV[a])
    redis.call('ZADD', KEYS[k + 2], ARGV[1], ARGV[a])
    queued = queued + 1
  end
end
return queued
"""

# claim(lane, due, age, disabled key, now, lease, limit, hash prefix, token, endpoint). A delivery
# already finished (by a notifier of before the lanes, which kept only the due set) or gone
# leaves the indexes instead of being sent again.
_CLAIM_FUNCTION = """
local function claim(lane, due, age, disabled, now, lease, limit, prefix, token, endpoint)
  local ids = redis.call('ZRANGEBYSCORE', lane, '-inf', now, 'LIMIT', 0, limit)
  local out = {}
  for _, id in ipairs(ids) do
    local h = prefix .. id
    local status = redis.call('HGET', h, 'status')
    if status ~= 'pending' and status ~= 'inflight' then
      redis.call('ZREM', lane, id)
      redis.call('ZREM', due, id)
      redis.call('ZREM', age, id)
    else
      local attempt = redis.call('HINCRBY', h, 'attempt', 1)
      redis.call('HSET', h, 'token', token, 'status', 'inflight')
      local until_ms = tonumber(now) + tonumber(lease)
      redis.call('ZADD', lane, until_ms, id)
      redis.call('ZADD', due, until_ms, id)
      local f = redis.call('HMGET', h, 'endpoint', 'msg_id', 'key', 'body', 'created_ms')
      table.insert(out, {id, attempt, f[1], f[2], f[3], f[4], f[5]})
    end
  end
  local head = redis.call('ZRANGE', lane, 0, 0, 'WITHSCORES')
  local reason = redis.call('HGET', disabled, endpoint)
  return {out, head[2] or '', reason or false}
end
"""

# KEYS: lane, due, age, disabled
CLAIM = (
    _CLAIM_FUNCTION
    + "return claim(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], "
    "ARGV[5], ARGV[6])\n"
)

# KEYS: delivery hash, lane, due, age, disabled. Finishes the attempt the token owns (a token
# that no longer owns it, its lease run out and the delivery claimed again, changes nothing),
# then claims up to ARGV[10] due deliveries of the same lane: the slot's next attempts, in the
# same round trip. Returns {1 or 0, claimed, lane head, disabled reason}.
COMPLETE = (
    _CLAIM_FUNCTION
    + """
local h, lane, due, age = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local done = 0
if redis.call('HGET', h, 'token') == ARGV[1] then
  redis.call('HSET', h, 'status', ARGV[2], 'last_status', ARGV[5], 'last_error', ARGV[6],
    'updated_ms', ARGV[7], 'token', '')
  if ARGV[2] == 'pending' then
    redis.call('ZADD', lane, ARGV[3], ARGV[8])
    redis.call('ZADD', due, ARGV[3], ARGV[8])
  else
    redis.call('ZREM', lane, ARGV[8])
    redis.call('ZREM', due, ARGV[8])
    redis.call('ZREM', age, ARGV[8])
    redis.call('EXPIRE', h, ARGV[4])
  end
  done = 1
end
local c = claim(lane, due, age, KEYS[5], ARGV[7], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13])
return {done, c[1], c[2], c[3]}
"""
)

# KEYS: due. Puts due deliveries that no lane holds into their endpoint's lane (deliveries queued
# before the lanes, or by a notifier of that version while one of this version runs), one page
# of the due set a call; drops ids whose hash is gone. Returns {adopted, next start, endpoints}.
ADOPT = """
local rows = redis.call('ZRANGE', KEYS[1], ARGV[4], tonumber(ARGV[4]) + tonumber(ARGV[5]) - 1,
  'WITHSCORES')
local adopted, dropped, seen, endpoints = 0, 0, {}, {}
for i = 1, #rows, 2 do
  local id, due = rows[i], rows[i + 1]
  local f = redis.call('HMGET', ARGV[1] .. id, 'endpoint', 'created_ms')
  if not f[1] then
    redis.call('ZREM', KEYS[1], id)
    dropped = dropped + 1
  else
    if redis.call('ZSCORE', ARGV[2] .. f[1], id) == false then
      redis.call('ZADD', ARGV[2] .. f[1], due, id)
      redis.call('ZADD', ARGV[3] .. f[1], f[2] or due, id)
      adopted = adopted + 1
    end
    if not seen[f[1]] then
      seen[f[1]] = true
      table.insert(endpoints, f[1])
    end
  end
end
local nxt = tonumber(ARGV[4]) + #rows / 2 - dropped
if #rows / 2 < tonumber(ARGV[5]) then nxt = -1 end
return {adopted, nxt, endpoints}
"""

# KEYS: due, then lane and age of each endpoint. Returns {pending in all, oldest due in all,
# then per endpoint: pending, oldest created, oldest due}; '' where a set is empty.
BACKLOG = """
local function head(key)
  return redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or ''
end
local out = {redis.call('ZCARD', KEYS[1]), head(KEYS[1])}
for i = 2, #KEYS, 2 do
  table.insert(out, redis.call('ZCARD', KEYS[i]))
  table.insert(out, head(KEYS[i + 1]))
  table.insert(out, head(KEYS[i]))
end
return out
"""
