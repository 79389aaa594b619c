--[[
  moveJobFromActiveToWait: the processor raised RateLimitError. The job goes back to the head of wait (or the
  head of its priority band) without using an attempt.

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      job id
  ARGV[5]      lock token

  Returns the limiter's remaining ttl in ms (0 if none), or a negative error code.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId, token = ARGV[4], ARGV[5]
local jobKey = keys.base .. jobId
local code = leaveActive(keys, jobKey, jobId, token)
if code ~= 0 then return code end
local priority = tonumber(redis.call("HGET", jobKey, "priority") or "0") or 0
if priority == 0 then
  redis.call("RPUSH", targetList(meta, keys.wait, keys.paused), jobId)
else
  addToPrioritized(keys.prioritized, keys.pc, jobId, priority, true)
end
addBaseMarkerIfReady(keys.marker, meta, keys.active)
emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "active")
local pttl = redis.call("PTTL", keys.limiter)
if pttl > 0 then return pttl end
return 0
