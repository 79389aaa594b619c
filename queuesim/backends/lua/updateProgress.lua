--[[
  updateProgress: store a job's progress and emit "progress".

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id; ARGV[5] progress (JSON).
  Returns 0, or -1 when the job does not exist.
]]
--@include "common"
local keys = queueKeys()
local jobKey = keys.base .. ARGV[4]
if redis.call("EXISTS", jobKey) == 0 then return -1 end
redis.call("HSET", jobKey, "progress", ARGV[5])
emit(keys.events, readMeta(keys.meta).maxEvents, "event", "progress", "jobId", ARGV[4], "data", ARGV[5])
return 0
