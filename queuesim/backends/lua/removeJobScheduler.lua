--[[
  removeJobScheduler: delete a job scheduler and its pending iteration when that one is still delayed
  ("removed" event). Iterations already waiting, running or finished stay as ordinary jobs.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] scheduler id.
  Returns 1 when the scheduler existed, 0 otherwise.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local schedulerId = ARGV[4]
local repeatKey = keys["repeat"]
local due = redis.call("ZSCORE", repeatKey, schedulerId)
if due then
  local pendingId = "repeat:" .. schedulerId .. ":" .. due
  if redis.call("ZREM", keys.delayed, pendingId) == 1 then
    removeJobKeys(keys.base .. pendingId)
    emit(keys.events, meta.maxEvents, "event", "removed", "jobId", pendingId, "prev", "delayed")
    refreshDelayMarker(keys.marker, keys.delayed)
  end
end
redis.call("DEL", repeatKey .. ":" .. schedulerId)
return redis.call("ZREM", repeatKey, schedulerId)
