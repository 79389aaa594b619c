--[[
  cleanJobsInSet: remove jobs of one state older than a grace period (queue.clean). Emits one "cleaned"
  event with the count, no per-job "removed". Spares a job scheduler's pending iteration and locked jobs.

  Age is judged by: completed/failed → finishedOn; wait/paused → finishedOn, processedOn or timestamp;
  active → only unlocked jobs, by processedOn or timestamp; delayed → processedOn or timestamp;
  prioritized → timestamp.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] state key name;
  ARGV[5] cutoff time (ms): jobs at or before it go; ARGV[6] limit (0 = all).
  Returns the removed ids.
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local state, cutoff, limit = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local setKey = keys[state]
local isList = state == "wait" or state == "paused" or state == "active"
local ids
if isList then
  ids = redis.call("LRANGE", setKey, 0, -1)
elseif state == "completed" or state == "failed" then
  ids = redis.call("ZRANGEBYSCORE", setKey, 0, cutoff)
else
  ids = redis.call("ZRANGE", setKey, 0, -1)
end
local removed = {}
for _, jobId in ipairs(ids) do
  if limit > 0 and #removed >= limit then break end
  local jobKey = keys.base .. jobId
  local f = redis.call("HMGET", jobKey, "finishedOn", "processedOn", "timestamp", "rjk")
  local when
  if state == "completed" or state == "failed" then
    when = tonumber(f[1])
  elseif state == "prioritized" then
    when = tonumber(f[3])
  elseif state == "delayed" or state == "active" then
    when = tonumber(f[2] or f[3])
  else
    when = tonumber(f[1] or f[2] or f[3])
  end
  local spare = f[4] and isSchedulerPendingJob(keys, jobId, jobKey)
  if state == "active" and redis.call("EXISTS", jobKey .. ":lock") == 1 then spare = true end
  if not spare and (when == nil or when <= cutoff) then
    if isList then
      redis.call("LREM", setKey, 0, jobId)
    else
      redis.call("ZREM", setKey, jobId)
    end
    releaseDedup(keys.base, jobKey, jobId)
    removeJobKeys(jobKey)
    table.insert(removed, jobId)
  end
end
emit(keys.events, meta.maxEvents, "event", "cleaned", "count", #removed)
return removed
