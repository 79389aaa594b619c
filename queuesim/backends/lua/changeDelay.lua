--[[
  changeDelay: a delayed job becomes due at now + delay.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id; ARGV[5] delay (ms).
  Returns 0, -1 (missing) or -3 (not delayed).
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId, delay = ARGV[4], tonumber(ARGV[5])
local jobKey = keys.base .. jobId
if redis.call("EXISTS", jobKey) == 0 then return -1 end
if not redis.call("ZSCORE", keys.delayed, jobId) then return -3 end
local due = tonumber(ARGV[3]) + delay
redis.call("ZREM", keys.delayed, jobId)
addDelayed(keys.delayed, jobId, due)
redis.call("HSET", jobKey, "delay", delay)
emit(keys.events, meta.maxEvents, "event", "delayed", "jobId", jobId, "delay", due)
refreshDelayMarker(keys.marker, keys.delayed)
return 0
