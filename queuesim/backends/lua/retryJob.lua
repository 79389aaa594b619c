--[[
  retryJob: a failed attempt with attempts left and no backoff goes straight back to wait / prioritized.

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      job id
  ARGV[5]      lock token
  ARGV[6]      failed reason
  ARGV[7]      stacktrace (JSON array)
  ARGV[8]      lifo ("1"/"0")

  Returns 0 or a negative error code.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, jobId, token = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local jobKey = keys.base .. jobId
promoteDueDelayed(keys, meta, keys.base, now)
local code = leaveActive(keys, jobKey, jobId, token)
if code ~= 0 then return code end
redis.call("HSET", jobKey, "failedReason", ARGV[6], "stacktrace", ARGV[7])
local priority = tonumber(redis.call("HGET", jobKey, "priority") or "0") or 0
addReady(keys, meta, jobId, priority, ARGV[8] == "1")
addBaseMarkerIfReady(keys.marker, meta, keys.active)
redis.call("HINCRBY", jobKey, "atm", 1)
emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "active")
return 0
