-- Erase one candidate. KEYS: profile, dedupe, caps, contributions, merged-ids set, job profiles,
-- jobs left, job ranks of earlier versions (every key of the candidate:
-- engagement.store.redis_keys.CandidateKeys.all).
-- Returns {last sequence, number of keys removed, merged anonymous ids}.
local seq = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local merged = redis.call('SMEMBERS', KEYS[5])
local removed = redis.call('DEL', unpack(KEYS))
return {seq, removed, merged}
