--[[
  drain: delete every waiting (wait, paused) and prioritized job, and the delayed ones when asked.
  Active, completed and failed jobs stay; a job scheduler's pending iteration is spared. No event.

  KEYS[1..17] the queue keys; ARGV[1..3] prefix, queue name, now; ARGV[4] include delayed ("1"/"0").
]]
--@include "common"
local keys = queueKeys()
local function dropList(listKey)
  for _, jobId in ipairs(redis.call("LRANGE", listKey, 0, -1)) do
    removeJobKeys(keys.base .. jobId)
  end
  redis.call("DEL", listKey)
end
local function dropSet(setKey, spareSchedulers)
  for _, jobId in ipairs(redis.call("ZRANGE", setKey, 0, -1)) do
    local jobKey = keys.base .. jobId
    local schedulerId = spareSchedulers and redis.call("HGET", jobKey, "rjk")
    if not (schedulerId and redis.call("ZSCORE", keys["repeat"], schedulerId)) then
      releaseDedup(keys.base, jobKey, jobId)
      removeJobKeys(jobKey)
      redis.call("ZREM", setKey, jobId)
    end
  end
end
for _, listKey in ipairs({keys.wait, keys.paused}) do
  for _, jobId in ipairs(redis.call("LRANGE", listKey, 0, -1)) do
    releaseDedup(keys.base, keys.base .. jobId, jobId)
  end
  dropList(listKey)
end
dropSet(keys.prioritized, false)
redis.call("DEL", keys.pc)
if ARGV[4] == "1" then
  dropSet(keys.delayed, true)
  refreshDelayMarker(keys.marker, keys.delayed)
end
return 0
