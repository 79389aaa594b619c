--[[
  addJobScheduler: create or replace a job scheduler and its pending iteration (queue.upsert_job_scheduler).

  An existing scheduler's pending iteration that is still delayed, prioritized or waiting is removed ("removed"
  event) and replaced, so upserting never duplicates it. With an unchanged "every" the replacement keeps the
  pending iteration's due time; a changed "every" starts afresh (first run now). The iteration count "ic" and a
  stored offset carry over. When the iteration id is taken by another job (an old finished iteration, or the one
  running now), an "every" scheduler moves on slot by slot (up to 32); a "pattern" one gives up (-10).

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      scheduler id
  ARGV[5]      due time of the first iteration (ms) for a "pattern" scheduler ("" for "every")
  ARGV[6]      job name
  ARGV[7]      job data (JSON)
  ARGV[8]      the iterations' options (JSON): the job template plus "repeat"
  ARGV[9]      every (ms, "" for a pattern)
  ARGV[10]     offset given by the caller (ms, "" = none)
  ARGV[11]     start date (ms, "" = none)
  ARGV[12..]   field, value pairs of the scheduler hash (without "ic" and "offset")

  Returns the iteration's job id, -10 (pattern: id taken) or -11 (every: 32 slots taken); nothing is written then.
]]
--@include "common"
--@include "scheduler"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, schedulerId = tonumber(ARGV[3]), ARGV[4]
local every, givenOffset, startDate = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local repeatKey = keys["repeat"]
local hashKey = repeatKey .. ":" .. schedulerId

local prev = redis.call("ZSCORE", repeatKey, schedulerId)
if prev then prev = tonumber(prev) end
local due = tonumber(ARGV[5])
local newOffset = givenOffset
local everyChanged = false
if every then
  local fromPrev = prev
  if prev and tonumber(redis.call("HGET", hashKey, "every")) ~= every then
    fromPrev = nil
    everyChanged = true
  end
  due, newOffset = everyNextMillis(fromPrev, every, now, givenOffset or 0, startDate)
end

-- the pending iteration, if it has not started yet
local pendingId, pendingWhere = nil, nil
if prev then
  pendingId = "repeat:" .. schedulerId .. ":" .. prev
  pendingWhere = findJobKeyName(keys, pendingId)
  if not (pendingWhere == "delayed" or pendingWhere == "prioritized" or pendingWhere == "wait"
      or pendingWhere == "paused") then
    pendingWhere = nil
  end
end
if pendingWhere and every and not everyChanged then due = prev end

local jobId = "repeat:" .. schedulerId .. ":" .. due
if redis.call("EXISTS", keys.base .. jobId) == 1 and jobId ~= (pendingWhere and pendingId) then
  if not every then return -10 end
  local scanned = 0
  repeat
    due = due + every
    jobId = "repeat:" .. schedulerId .. ":" .. due
    scanned = scanned + 1
  until redis.call("EXISTS", keys.base .. jobId) == 0 or scanned >= 32
  if redis.call("EXISTS", keys.base .. jobId) == 1 then return -11 end
end

if pendingWhere then
  if pendingWhere == "wait" or pendingWhere == "paused" then
    redis.call("LREM", keys[pendingWhere], 0, pendingId)
  else
    redis.call("ZREM", keys[pendingWhere], pendingId)
  end
  releaseDedup(keys.base, keys.base .. pendingId, pendingId)
  removeJobKeys(keys.base .. pendingId)
  emit(keys.events, meta.maxEvents, "event", "removed", "jobId", pendingId, "prev", pendingWhere)
  if pendingWhere == "delayed" then refreshDelayMarker(keys.marker, keys.delayed) end
else
  givenOffset = newOffset
end

local count = tonumber(redis.call("HGET", hashKey, "ic") or "1")
local offset = givenOffset or tonumber(redis.call("HGET", hashKey, "offset") or "")
redis.call("DEL", hashKey)
redis.call("HSET", hashKey, "ic", count, unpack(ARGV, 12))
if offset then redis.call("HSET", hashKey, "offset", offset) end
redis.call("ZADD", repeatKey, due, schedulerId)
addSchedulerIteration(keys, meta, jobId, schedulerId, ARGV[6], ARGV[7], ARGV[8], now, due, count)
return jobId
