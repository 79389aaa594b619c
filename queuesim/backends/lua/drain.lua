--[[
  drain: delete every waiting (wait, paused) and prioritized job, and the delayed ones when asked.
  Active, completed and failed jobs stay; a job scheduler's pending iteration is spared. No event.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] include delayed ("1"/"0").
]]
--@include "common"
local keys = queueKeys()
-- Drop every job of a list or sorted set except a job scheduler's pending iteration.
local function drop(key, isList)
  local ids
  if isList then ids = redis.call("LRANGE", key, 0, -1) else ids = redis.call("ZRANGE", key, 0, -1) end
  local spared = 0
  for _, jobId in ipairs(ids) do
    local jobKey = keys.base .. jobId
    if isSchedulerPendingJob(keys, jobId, jobKey) then
      spared = spared + 1
    else
      releaseDedup(keys.base, jobKey, jobId)
      removeJobKeys(jobKey)
      if isList then redis.call("LREM", key, 0, jobId) else redis.call("ZREM", key, jobId) end
    end
  end
  return spared
end
drop(keys.wait, true)
drop(keys.paused, true)
if drop(keys.prioritized, false) == 0 then redis.call("DEL", keys.pc) end
if ARGV[4] == "1" then
  drop(keys.delayed, false)
  refreshDelayMarker(keys.marker, keys.delayed)
end
return 0
