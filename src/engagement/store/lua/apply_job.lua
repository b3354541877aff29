-- Apply one scored event that names a job: the candidate's apply (apply.lua, run as the function
-- apply_candidate: store_scripts assembles this script), then, when it scored, the same points into
-- the (candidate, job) profile, in the same script (atomic: a replay is a duplicate for both).
-- KEYS: apply.lua's four, then the job profiles hash and the jobs left zset (job_profile.lua). ARGV: apply.lua's, then the job id. Returns apply.lua's reply, a scored one
-- with a fourth element: the job entries (job_profile.lua job_entries); a duplicate of a candidate
-- not merged away as {'duplicate', snapshot, snapshot, {the jobs it left (job_left), the job's
-- current state (job_current)}}, so that the replayed record carries them (the records of the
-- change that made them may never have reached Kafka).
local reply = apply_candidate()
local kind = reply[1]
if kind ~= 'scored' and kind ~= 'duplicate' then return reply end
local cfg, n = read_config()
local J, L, job = KEYS[5], KEYS[6], ARGV[n + 9]
if kind == 'duplicate' then
  if call('HEXISTS', KEYS[1], 'm') == 1 then return reply end
  local entries = job_left(L, {})
  entries[#entries + 1] = job_current(J, job, cfg)
  if #entries == 0 then return reply end
  return {kind, reply[2], reply[2], entries}
end
local seq = tonumber(string.match(reply[3], '^[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31[^\31]*\31([^\31]*)'))
local entry, new = job_add(J, L, job, tonumber(ARGV[n + 1]), tonumber(ARGV[n + 3]),
                           {[ARGV[n + 4]] = tonumber(ARGV[n + 3])}, seq, cfg)
local dropped = new and job_bound(J, L, seq, cfg) or {}
reply[4] = job_entries({[job] = entry}, dropped, seq)
return reply
