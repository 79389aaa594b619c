--[[
  moveJobsToWait: retryJobs / promoteJobs. Up to `count` jobs of a set (failed, completed or delayed) with a
  score not above `timestamp` go to wait (or paused), ignoring their priority, finish fields cleared.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] state; ARGV[5] count;
  ARGV[6] timestamp (for delayed: a due time). Returns how many jobs moved (the caller loops while > 0).
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local state, count, maxScore = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local setKey = keys[state]
if state == "delayed" then maxScore = (maxScore + 1) * DELAY_SHIFT - 1 end
local ids = redis.call("ZRANGEBYSCORE", setKey, 0, maxScore, "LIMIT", 0, count)
if #ids == 0 then return 0 end
local list = targetList(meta, keys.wait, keys.paused)
for _, jobId in ipairs(ids) do
  local jobKey = keys.base .. jobId
  redis.call("ZREM", setKey, jobId)
  if state == "delayed" then
    redis.call("HSET", jobKey, "delay", 0)
  else
    redis.call("HDEL", jobKey, "finishedOn", "processedOn", "failedReason", "returnvalue")
  end
  redis.call("LPUSH", list, jobId)
  emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", state)
end
addBaseMarkerIfReady(keys.marker, meta, keys.active)
if state == "delayed" then refreshDelayMarker(keys.marker, keys.delayed) end
return #ids
