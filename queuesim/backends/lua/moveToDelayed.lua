--[[
  moveToDelayed: an active job waits until a due time, either for a retry with backoff (uses an attempt) or
  because its processor asked for it (job.move_to_delayed: skip_attempt, costs no attempt).

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      job id
  ARGV[5]      lock token
  ARGV[6]      due time (absolute ms)
  ARGV[7]      skip attempt ("1"/"0")
  ARGV[8]      failed reason ("" = leave as is)
  ARGV[9]      stacktrace JSON ("" = leave as is)

  Returns 0 or a negative error code.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, jobId, token, due = tonumber(ARGV[3]), ARGV[4], ARGV[5], tonumber(ARGV[6])
local jobKey = keys.base .. jobId
local code = leaveActive(keys, jobKey, jobId, token)
if code ~= 0 then return code end
if ARGV[8] ~= "" then redis.call("HSET", jobKey, "failedReason", ARGV[8]) end
if ARGV[9] ~= "" then redis.call("HSET", jobKey, "stacktrace", ARGV[9]) end
if ARGV[7] ~= "1" then redis.call("HINCRBY", jobKey, "atm", 1) end
redis.call("HSET", jobKey, "delay", math.max(due - now, 0))
addDelayed(keys.delayed, jobId, due)
emit(keys.events, meta.maxEvents, "event", "delayed", "jobId", jobId, "delay", due)
refreshDelayMarker(keys.marker, keys.delayed)
return 0
