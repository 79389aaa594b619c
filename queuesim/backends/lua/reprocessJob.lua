--[[
  reprocessJob: run a finished job again (job.retry). It leaves the completed/failed set for wait (or paused),
  ignoring its priority, with its finish fields cleared.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id;
  ARGV[5] state ("failed"/"completed"); ARGV[6] reset attempts made ("1"/"0"); ARGV[7] reset attempts started.
  Returns 0, -1 (missing) or -3 (not in that state).
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId, state = ARGV[4], ARGV[5]
local jobKey = keys.base .. jobId
if redis.call("EXISTS", jobKey) == 0 then return -1 end
if redis.call("ZREM", keys[state], jobId) == 0 then return -3 end
local resultField = "returnvalue"
if state == "failed" then resultField = "failedReason" end
redis.call("HDEL", jobKey, "finishedOn", "processedOn", resultField)
if ARGV[6] == "1" then redis.call("HDEL", jobKey, "atm", "attemptsMade") end
if ARGV[7] == "1" then redis.call("HDEL", jobKey, "ats") end
local opts = redis.call("HGET", jobKey, "opts")
local lifo = opts and string.find(opts, '"lifo":true', 1, true) ~= nil
pushToList(targetList(meta, keys.wait, keys.paused), jobId, lifo)
addBaseMarkerIfReady(keys.marker, meta, keys.active)
emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", state)
return 0
