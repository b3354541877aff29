-- Erase one candidate. KEYS: profile, dedupe, caps, contributions, merged-ids set. ARGV, for an
-- id merged into the candidate being erased: the ids it can be merged into (that candidate and
-- the ids merged into it). Such an id whose profile is merged into none of them is no part of
-- the candidate any more (it was erased on its own and started anew, or folded into another
-- candidate since: a replay can reach the erasure after its new events) and is kept.
-- Returns {last sequence, number of keys removed, merged anonymous ids, 1 if kept else 0}.
if #ARGV > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local into, ours = redis.call('HGET', KEYS[1], 'm'), false
  if into then
    for _, id in ipairs(ARGV) do
      if id == into then ours = true; break end
    end
  end
  if not ours then return {0, 0, {}, 1} end
end
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local merged = redis.call('SMEMBERS', KEYS[5])
local removed = redis.call('DEL', unpack(KEYS))
return {seq, removed, merged, 0}
