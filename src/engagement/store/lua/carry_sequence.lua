-- Carry one candidate over from the store a rebuild replaces (engagement.tools.rebuild). KEYS: the
-- rebuilt profile, the replaced store's profile, the notifier's state of the candidate under the
-- rebuilt prefix and under the replaced one (one candidate: one slot).
-- ARGV: the candidate's sequence in the replaced store's rank hash; optionally a margin added to
-- the higher of it and the replaced profile's (a tenant's rebuild: what the live scorers can still
-- score on the replaced keys). The notifier's state is copied unless the rebuilt prefix has one
-- (one key when both are one prefix: a tenant's rebuild). A candidate the rebuild has
-- no profile of (no event of it left on the topic) gets one holding only the sequence, so its
-- next event goes on past it (reads take a profile without `t` for no candidate). Returns
-- {'missing', its sequence} for it, else {'kept' | 'raised', the profile's fields and values
-- after (flat)}: 'raised' when its sequence was below the replaced store's and now equals it.
local call = redis.call
local rebuilt, replaced = KEYS[1], KEYS[2]
if KEYS[3] ~= KEYS[4] and call('EXISTS', KEYS[4]) == 1 then
  call('COPY', KEYS[4], KEYS[3])  -- no REPLACE: kept
end
local floor = tonumber(ARGV[1]) or 0
local was = tonumber(call('HGET', replaced, 's') or '0') or 0
if was > floor then floor = was end
floor = floor + (tonumber(ARGV[2]) or 0)
local raised = floor > (tonumber(call('HGET', rebuilt, 's') or '0') or 0)
if raised then call('HSET', rebuilt, 's', string.format('%d', floor)) end
if call('HEXISTS', rebuilt, 't') == 0 and call('HEXISTS', rebuilt, 'm') == 0 then
  return {'missing', floor}
end
return {raised and 'raised' or 'kept', call('HGETALL', rebuilt)}
