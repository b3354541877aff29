-- (Candidate, job) profiles, in the candidate's slot (prepended after common.lua to the scripts
-- that touch them). KEYS of the candidate: J the job profiles hash (job id -> 't␟r␟e␟a␟i␟g␟s'),
-- L the jobs left zset (job id -> the candidate's sequence when it dropped the job as its
-- weakest, while it has no profile for it; the newest JOB.keep: what a replay re-publishes).
-- The weakest job now is the one of lowest rank key log2(r) + t/h (it orders the jobs by their
-- current score at every instant), computed from J only when the candidate has one job too many:
-- most events name a job the candidate has, and pay nothing for the bound. Same formula,
-- decay and number texts as the candidate's profile (common.lua); JOB (the job config block) holds
-- keep (profiles per candidate) and tiers (flat enter/exit, as cfg.tiers). Job ids hold no
-- control character (engagement.model.jobs.job_id), so they are not escaped in replies.
local LN2 = math.log(2)

local function job_load(packed)
  local jp = {r = 0, e = 0, a = 0, i = 0, g = 1, s = 0}
  if not packed then return jp end
  local t, r, e, a, i, g, s = string.match(packed,
    '^([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)\31([^\31]*)$')
  jp.t, jp.r, jp.e, jp.a, jp.i = tonumber(t), tonumber(r), tonumber(e), tonumber(a), tonumber(i)
  jp.g, jp.s = tonumber(g), tonumber(s)
  return jp
end

-- Add sums (r, and {e=, a=, i=} any of them) of instant t to the job's profile, as apply adds an
-- event (or merge_add a frozen profile) to the candidate's: the later of both reference times, the
-- tier decayed first and then moved (JOB.tiers). seq: the candidate's sequence of the change.
-- Returns the job's entry of the reply ('U␟job␟packed␟tier before␟score before␟score') and whether
-- the job is new to the candidate.
local function job_add(J, L, job, t, r, sums, seq, cfg)
  local jp, h = job_load(call('HGET', J, job)), cfg.h
  if jp.t == nil then jp.t = t
  elseif t > jp.t then
    local f = 2 ^ (-(t - jp.t) / h)
    jp.r, jp.e, jp.a, jp.i = jp.r * f, jp.e * f, jp.a * f, jp.i * f
    jp.t = t
  end
  local score = score_of(jp.r, cfg.scale)
  jp.g = tier_after_decay(jp.g, score, JOB.tiers)
  local before = format('%d', jp.g) .. '\31' .. format('%d', score)
  local f = 2 ^ (-(jp.t - t) / h)
  jp.r = jp.r + r * f
  for pillar, x in pairs(sums) do jp[pillar] = jp[pillar] + x * f end
  score = score_of(jp.r, cfg.scale)
  jp.g = tier_move(jp.g, score, JOB.tiers)
  local packed = fmt(jp.t) .. '\31' .. fmt(jp.r) .. '\31' .. fmt(jp.e) .. '\31' .. fmt(jp.a) ..
                 '\31' .. fmt(jp.i) .. '\31' .. format('%d', jp.g) .. '\31' .. format('%d', seq)
  local new = call('HSET', J, job, packed) == 1
  if new then call('ZREM', L, job) end  -- back in the job: its profile's states supersede
  return 'U\31' .. job .. '\31' .. packed .. '\31' .. before .. '\31' .. format('%d', score), new
end

-- a < b byte by byte, as a sorted set orders members of equal score (Lua's < on strings follows
-- the server's collation locale)
local function bytes_before(a, b)
  for k = 1, math.min(#a, #b) do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- The candidate's jobs, weakest now first: {rank key, job id} each (rank key -inf when r <= 0;
-- ties by job id, byte order).
local function jobs_by_rank(J, h)
  local flat, ranked = call('HGETALL', J), {}
  for k = 1, #flat, 2 do
    local t, r = string.match(flat[k + 1], '^([^\31]*)\31([^\31]*)')
    r = tonumber(r)
    ranked[#ranked + 1] = {r > 0 and math.log(r) / LN2 + tonumber(t) / h or -math.huge, flat[k]}
  end
  table.sort(ranked, function(x, y)
    return x[1] < y[1] or (x[1] == y[1] and bytes_before(x[2], y[2]))
  end)
  return ranked
end

-- Drop the weakest jobs while the candidate has more than JOB.keep, each logged in L at seq (the
-- candidate's sequence of the change; L keeps the newest JOB.keep); returns the dropped ids.
local function job_bound(J, L, seq, cfg)
  local dropped = {}
  if call('HLEN', J) <= JOB.keep then return dropped end
  local ranked = jobs_by_rank(J, cfg.h)
  for k = 1, #ranked - JOB.keep do
    local weakest = ranked[k][2]
    call('HDEL', J, weakest)
    call('ZADD', L, seq, weakest)
    dropped[weakest] = true
  end
  call('ZREMRANGEBYRANK', L, 0, -JOB.keep - 1)
  return dropped
end

-- The reply's job entries: each changed job ('U␟...') not dropped since, then 'D␟job␟seq' per
-- dropped job (the candidate left it at sequence seq).
local function job_entries(changed, dropped, seq)
  local out = {}
  for job, entry in pairs(changed) do
    if not dropped[job] then out[#out + 1] = entry end
  end
  for job in pairs(dropped) do out[#out + 1] = 'D\31' .. job .. '\31' .. format('%d', seq) end
  return out
end

-- A replay's entry of the job's current state, 'R␟job␟packed␟score' (score at its reference
-- time; no state before it: the records of the change that made it may never have reached Kafka),
-- or nil when the candidate has no profile for the job (dropped since).
local function job_current(J, job, cfg)
  local packed = call('HGET', J, job)
  if not packed then return nil end
  local r = tonumber(string.match(packed, '^[^\31]*\31([^\31]*)'))
  return 'R\31' .. job .. '\31' .. packed .. '\31' .. format('%d', score_of(r, cfg.scale))
end

-- A replay's entries of the jobs the candidate left (L), 'D␟job␟seq' each, appended to out: the
-- records of the change that dropped one may never have reached Kafka, and nothing else tells
-- the notifier (consumers drop what they saw by its sequence).
local function job_left(L, out)
  local left = call('ZRANGE', L, 0, -1, 'WITHSCORES')
  for k = 1, #left, 2 do
    out[#out + 1] = 'D\31' .. left[k] .. '\31' .. format('%d', tonumber(left[k + 1]))
  end
  return out
end
