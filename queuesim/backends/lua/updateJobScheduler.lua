--[[
  updateJobScheduler: a scheduler's pending iteration became active, so the scheduler moves on and creates its
  next iteration (BullMQ's rule: at most one iteration is pending, and a failing job does not stop the
  schedule). Only the iteration the scheduler points at moves it on: fetching an older iteration again (after a
  stall or a retry) changes nothing. The caller has already checked "limit" and "endDate".

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      scheduler id
  ARGV[5]      id of the iteration that just became active (it gets "nrjid", the next iteration's id)
  ARGV[6]      due time of the next iteration (ms) for a "pattern" scheduler ("" for "every": computed here)
  ARGV[7]      job name
  ARGV[8]      job data (JSON)
  ARGV[9]      the iterations' options (JSON): the job template plus "repeat"

  Returns the next iteration's id, or 0 (the scheduler is gone or has moved on; or the next id is already
  taken, which emits "duplicated").
]]
--@include "common"
--@include "scheduler"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, schedulerId, producerId = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local repeatKey = keys["repeat"]
local hashKey = repeatKey .. ":" .. schedulerId
local current = redis.call("ZSCORE", repeatKey, schedulerId)
if not current or producerId ~= "repeat:" .. schedulerId .. ":" .. current
    or redis.call("EXISTS", hashKey) == 0 then
  return 0
end
local settings = redis.call("HMGET", hashKey, "every", "offset", "startDate")
local every = tonumber(settings[1])
local due = tonumber(ARGV[6])
if every then
  local offset
  due, offset = everyNextMillis(tonumber(current), every, now, tonumber(settings[2] or "0") or 0,
    tonumber(settings[3] or ""))
  if not settings[2] then redis.call("HSET", hashKey, "offset", offset) end
end
local jobId = "repeat:" .. schedulerId .. ":" .. due
if redis.call("EXISTS", keys.base .. jobId) == 1 then
  emit(keys.events, meta.maxEvents, "event", "duplicated", "jobId", jobId)
  return 0
end
local count = redis.call("HINCRBY", hashKey, "ic", 1)
redis.call("ZADD", repeatKey, due, schedulerId)
addSchedulerIteration(keys, meta, jobId, schedulerId, ARGV[7], ARGV[8], ARGV[9], now, due, count)
if redis.call("EXISTS", keys.base .. producerId) == 1 then
  redis.call("HSET", keys.base .. producerId, "nrjid", jobId)
end
return jobId
