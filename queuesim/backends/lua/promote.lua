--[[
  promote: make a delayed job ready now (keeps its priority, ignores lifo).

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id.
  Returns 0, or -3 when the job is not delayed.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId = ARGV[4]
if redis.call("ZREM", keys.delayed, jobId) == 0 then return -3 end
local jobKey = keys.base .. jobId
local priority = tonumber(redis.call("HGET", jobKey, "priority") or "0") or 0
addReady(keys, meta, jobId, priority, false)
addBaseMarkerIfReady(keys.marker, meta, keys.active)
redis.call("HSET", jobKey, "delay", 0)
emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "delayed")
refreshDelayMarker(keys.marker, keys.delayed)
return 0
