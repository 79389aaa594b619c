--[[
  changePriority: give a job a new priority. A waiting or prioritized job is re-queued under it
  (priority 0: wait, at the head when lifo; >0: tail of the band, or its head when lifo).
  The priority field is always written.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id; ARGV[5] priority;
  ARGV[6] lifo ("1"/"0"). Returns 0 or -1 (missing).
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId, priority, lifo = ARGV[4], tonumber(ARGV[5]), ARGV[6] == "1"
local jobKey = keys.base .. jobId
if redis.call("EXISTS", jobKey) == 0 then return -1 end
local list = targetList(meta, keys.wait, keys.paused)
local queued = redis.call("ZREM", keys.prioritized, jobId) > 0 or redis.call("LREM", list, 1, jobId) > 0
if queued then
  if priority == 0 then
    pushToList(list, jobId, lifo)
  else
    addToPrioritized(keys.prioritized, keys.pc, jobId, priority, lifo)
  end
  addBaseMarkerIfReady(keys.marker, meta, keys.active)
end
redis.call("HSET", jobKey, "priority", priority)
return 0
