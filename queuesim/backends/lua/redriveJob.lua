--[[
  redriveJob (queuesim extension): send a dead job from a dead-letter queue back to the queue it came from,
  with fresh attempts (attemptsMade, attemptsStarted and stalledCounter reset), as a ready job.

  KEYS[1]      the meta key of the SOURCE queue
  ARGV[1..3]   prefix, source queue name, now
  ARGV[4]      dead-letter queue name
  ARGV[5]      job id
  Returns 0, -1 (not in the dead-letter queue) or -3 (a job with that id exists in the source queue).
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local dlqBase = keys.prefix .. ":" .. ARGV[4] .. ":"
local jobId = ARGV[5]
local dlqJobKey, jobKey = dlqBase .. jobId, keys.base .. jobId
if redis.call("ZREM", dlqBase .. "failed", jobId) == 0 then return -1 end
if redis.call("EXISTS", jobKey) == 1 then
  redis.call("ZADD", dlqBase .. "failed", redis.call("HGET", dlqJobKey, "finishedOn") or 0, jobId)
  return -3
end
redis.call("RENAME", dlqJobKey, jobKey)
if redis.call("EXISTS", dlqJobKey .. ":logs") == 1 then redis.call("RENAME", dlqJobKey .. ":logs", jobKey .. ":logs") end
redis.call("HDEL", jobKey, "atm", "ats", "stc", "finishedOn", "processedOn", "failedReason", "defa", "dlqSource")
redis.call("HSET", jobKey, "delay", 0)
local priority = tonumber(redis.call("HGET", jobKey, "priority") or "0") or 0
addReady(keys, meta, jobId, priority, false)
addBaseMarkerIfReady(keys.marker, meta, keys.active)
emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "dead-letter")
return 0
