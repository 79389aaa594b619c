--[[
  moveToFinished: an active job completed or failed for good.

  KEYS[1..17]  the queue keys
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      job id
  ARGV[5]      lock token
  ARGV[6]      target: "completed" or "failed"
  ARGV[7]      return value (JSON) when completed, failed reason when failed
  ARGV[8]      stacktrace (JSON array) to store, "" = leave as is
  ARGV[9]      the job's "attempts" option (for retries-exhausted)
  ARGV[10..12] keep policy: count (-1 = all), age in s (-1 = any), limit per call
  ARGV[13]     fetch next ("1"/"0")
  ARGV[14..17] for the fetch: lock duration, limiter max, limiter duration, worker name
  ARGV[18]     lock token for the next job

  Returns 0 or a fetch result (see includes/fetch.lua); a negative number is an error code.
]]
--@include "common"
--@include "fetch"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, jobId, token, target = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local value, stacktrace, maxAttempts = ARGV[7], ARGV[8], tonumber(ARGV[9])
local keepCount, keepAge, keepLimit = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local jobKey = keys.base .. jobId

local code = leaveActive(keys, jobKey, jobId, token)
if code ~= 0 then return code end

redis.call("XTRIM", keys.events, "MAXLEN", "~", meta.maxEvents)
releaseDedup(keys.base, jobKey, jobId)
local attemptsMade = redis.call("HINCRBY", jobKey, "atm", 1)
local field = "returnvalue"
if target == "failed" then field = "failedReason" end
if stacktrace ~= "" then redis.call("HSET", jobKey, "stacktrace", stacktrace) end

local deadLetter = target == "failed" and meta.dlq
if deadLetter then
  -- queuesim extension: the job leaves this queue for the dead-letter queue's "failed" set
  local dlqBase = keys.prefix .. ":" .. meta.dlq .. ":"
  local dlqJobKey = dlqBase .. jobId
  if redis.call("EXISTS", dlqJobKey) == 1 then
    removeJobKeys(dlqJobKey)
  end
  redis.call("HSET", jobKey, field, value, "finishedOn", now, "dlqSource", keys.queue)
  redis.call("HDEL", jobKey, "defa")
  redis.call("RENAME", jobKey, dlqJobKey)
  if redis.call("EXISTS", jobKey .. ":logs") == 1 then
    redis.call("RENAME", jobKey .. ":logs", dlqJobKey .. ":logs")
  end
  redis.call("ZADD", dlqBase .. "failed", now, jobId)
elseif keepCount == 0 then
  removeJobKeys(jobKey)
else
  local setKey = keys.completed
  if target == "failed" then setKey = keys.failed end
  redis.call("ZADD", setKey, now, jobId)
  redis.call("HSET", jobKey, field, value, "finishedOn", now)
  if target == "failed" then redis.call("HDEL", jobKey, "defa") end
  if keepAge >= 0 then
    local old = redis.call("ZRANGEBYSCORE", setKey, 0, now - keepAge * 1000, "LIMIT", 0, keepLimit)
    for _, oldId in ipairs(old) do
      removeJobKeys(keys.base .. oldId)
      redis.call("ZREM", setKey, oldId)
    end
  end
  if keepCount > 0 then
    local surplus = redis.call("ZRANGE", setKey, 0, -(keepCount + 1))
    for _, oldId in ipairs(surplus) do
      removeJobKeys(keys.base .. oldId)
    end
    if #surplus > 0 then redis.call("ZREMRANGEBYRANK", setKey, 0, -(keepCount + 1)) end
  end
end

if target == "failed" then
  emit(keys.events, meta.maxEvents, "event", "failed", "jobId", jobId, "failedReason", value, "prev", "active")
  if attemptsMade >= maxAttempts then
    emit(keys.events, meta.maxEvents, "event", "retries-exhausted", "jobId", jobId, "attemptsMade", attemptsMade)
  end
  if deadLetter then
    emit(keys.events, meta.maxEvents, "event", "dead-lettered", "jobId", jobId, "deadLetterQueue", meta.dlq)
  end
else
  emit(keys.events, meta.maxEvents, "event", "completed", "jobId", jobId, "returnvalue", value, "prev", "active")
end

if ARGV[13] == "1" then
  local result = fetchNextJob(keys, meta, now, ARGV[18], tonumber(ARGV[14]),
    tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17])
  if result[2] ~= 0 or result[3] ~= 0 or result[4] ~= 0 or result[5] ~= 0 then return result end
  if redis.call("LLEN", keys.active) == 0 then
    emit(keys.events, meta.maxEvents, "event", "drained")
  end
  return result
end
if redis.call("LLEN", keys.wait) == 0 and redis.call("LLEN", keys.active) == 0
    and redis.call("ZCARD", keys.prioritized) == 0 then
  emit(keys.events, meta.maxEvents, "event", "drained")
end
return 0
