--[[
  removeJob: delete a job from whatever state it is in, with its logs and sub-keys; emit "removed".
  Refused while a worker holds the job's lock, and for a job scheduler's pending iteration.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id.
  Returns 1 when removed, 0 when the job does not exist, -2 when locked, -8 when owned by a scheduler.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local jobId = ARGV[4]
local jobKey = keys.base .. jobId
if redis.call("EXISTS", jobKey) == 0 then return 0 end
if redis.call("EXISTS", jobKey .. ":lock") == 1 then return -2 end
if isSchedulerPendingJob(keys, jobId, jobKey) then return -8 end
local where = findJobKeyName(keys, jobId)
if where == "wait" or where == "paused" or where == "active" then
  redis.call("LREM", keys[where], 0, jobId)
elseif where ~= "unknown" then
  local setKey = keys[where]
  if where == "waiting-children" then setKey = keys.waitingChildren end
  redis.call("ZREM", setKey, jobId)
end
releaseDedup(keys.base, jobKey, jobId)
removeJobKeys(jobKey)
emit(keys.events, meta.maxEvents, "event", "removed", "jobId", jobId, "prev", where)
return 1
