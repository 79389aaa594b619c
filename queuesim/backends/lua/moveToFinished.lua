--[[
  moveToFinished: an active job completed or failed for good.

  KEYS[1]      the queue's meta key
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

  Returns 0 or a fetch result (see includes/fetch.lua); a negative number is an error code (-4: a flow parent
  with pending children, -9: a flow parent with a child that failed it, both only when completing).
]]
--@include "common"
--@include "fetch"
--@include "flows"
local keys = queueKeys()
local meta = readMeta(keys.meta)
local now, jobId, token, target = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local value, stacktrace, maxAttempts = ARGV[7], ARGV[8], tonumber(ARGV[9])
local keepCount, keepAge, keepLimit = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local jobKey = keys.base .. jobId

local exists = redis.call("EXISTS", jobKey) == 1
if target == "completed" and exists
    and redis.call("EXISTS", jobKey .. ":dependencies", jobKey .. ":unsuccessful") ~= 0 then
  -- a flow parent completes only when every child is done and none failed it (Redis deletes an emptied set,
  -- so a job that is no flow parent has neither key and one EXISTS tells)
  if redis.call("SCARD", jobKey .. ":dependencies") ~= 0 then return -4 end
  if redis.call("ZCARD", jobKey .. ":unsuccessful") ~= 0 then return -9 end
end
local code = leaveActive(keys, jobKey, jobId, token, exists)
if code ~= 0 then return code end

-- Trim first, then write this finish's own events without a length cap, so that even with maxLenEvents 0 a
-- reader still finds the last "completed"/"failed" (and "drained") in the stream.
redis.call("XTRIM", keys.events, "MAXLEN", "~", meta.maxEvents)
local function emitUntrimmed(...)
  redis.call("XADD", keys.events, "*", ...)
end
-- the job's deduplication id and parent reference, read at once (nothing below changes them before use)
local own = redis.call("HMGET", jobKey, "deid", "parentKey", "parent")
local deid = releaseDedupOnFinish(keys.base, own[1], jobId)
if deid then
  -- deduplication keepLastIfActive: the newest duplicate added while this job ran becomes a job now, with
  -- the id it would have had then
  local nextKey = keys.base .. "dn:" .. deid
  local kept = redis.call("HMGET", nextKey, "name", "data", "opts", "jid")
  if kept[1] then
    local counter = tostring(redis.call("INCR", keys.id))
    local keptId = kept[4] or counter
    local keptKey = keys.base .. keptId
    local keptOpts = cjson.decode(kept[3])
    local de = keptOpts["de"]
    local ttl = type(de) == "table" and tonumber(de["ttl"]) or nil
    if type(de) == "table" and not de["keepLastIfActive"] and ttl and ttl > 0 then
      redis.call("SET", keys.base .. "de:" .. deid, keptId, "PX", ttl)
    else
      redis.call("SET", keys.base .. "de:" .. deid, keptId)
    end
    local keptDelay = tonumber(keptOpts["delay"] or 0) or 0
    local keptPriority = tonumber(keptOpts["priority"] or 0) or 0
    redis.call("HSET", keptKey, "name", kept[1], "data", kept[2], "opts", kept[3], "timestamp", now,
      "delay", keptDelay, "priority", keptPriority, "deid", deid)
    emitUntrimmed("event", "added", "jobId", keptId, "name", kept[1])
    placeNewJob(keys, meta, keptId, now + keptDelay, keptDelay, keptPriority, keptOpts["lifo"] == true)
    redis.call("DEL", nextKey)
  end
end
-- a completed job removed at once (removeOnComplete true or 0) has no hash left to count this attempt in
local attemptsMade = 0
if target ~= "completed" or keepCount ~= 0 then
  attemptsMade = redis.call("HINCRBY", jobKey, "atm", 1)
end
local field = "returnvalue"
if target == "failed" then field = "failedReason" end
if stacktrace ~= "" then redis.call("HSET", jobKey, "stacktrace", stacktrace) end

-- a flow child tells its parent, before its own hash may be removed below
local parentRef = readParentRef(own[2], own[3])
if parentRef then
  if target == "completed" then
    childCompleted(parentRef, jobKey, value, now)
  else
    childFailed(parentRef, jobKey, value, now)
  end
end

local deadLetter = target == "failed" and meta.dlq
local dlqBase, dlqJobKey
local refused = false
if deadLetter then
  dlqBase = keys.prefix .. ":" .. meta.dlq .. ":"
  dlqJobKey = dlqBase .. jobId
  if redis.call("EXISTS", dlqJobKey) == 1 then
    if redis.call("HGET", dlqJobKey, "dlqSource") == keys.queue then
      -- an earlier death of a job with this id from this same queue: the newer one replaces it
      removeJobKeys(dlqJobKey)
    else
      -- a job that came from elsewhere has this id there: never overwrite it; this job stays in this
      -- queue's "failed" set instead (whatever removeOnFail says), and no "dead-lettered" event is written
      deadLetter = false
      refused = true
    end
  end
end
if deadLetter then
  -- queuesim extension: the job leaves this queue for the dead-letter queue's "failed" set
  redis.call("HSET", jobKey, field, value, "finishedOn", now, "dlqSource", keys.queue)
  redis.call("HDEL", jobKey, "defa")
  redis.call("RENAME", jobKey, dlqJobKey)
  if redis.call("EXISTS", jobKey .. ":logs") == 1 then
    redis.call("RENAME", jobKey .. ":logs", dlqJobKey .. ":logs")
  end
  redis.call("ZADD", dlqBase .. "failed", now, jobId)
elseif refused then
  redis.call("ZADD", keys.failed, now, jobId)
  redis.call("HSET", jobKey, field, value, "finishedOn", now)
  redis.call("HDEL", jobKey, "defa")
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
  emitUntrimmed("event", "failed", "jobId", jobId, "failedReason", value, "prev", "active")
  if attemptsMade >= maxAttempts then
    emitUntrimmed("event", "retries-exhausted", "jobId", jobId, "attemptsMade", attemptsMade)
  end
  if deadLetter then
    emitUntrimmed("event", "dead-lettered", "jobId", jobId, "deadLetterQueue", meta.dlq)
  end
else
  emitUntrimmed("event", "completed", "jobId", jobId, "returnvalue", value, "prev", "active")
end

if ARGV[13] == "1" then
  local result = fetchNextJob(keys, meta, now, ARGV[18], tonumber(ARGV[14]),
    tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17])
  if result[2] ~= 0 or result[3] ~= 0 or result[4] ~= 0 or result[5] ~= 0 then return result end
  if redis.call("LLEN", keys.active) == 0 then
    emitUntrimmed("event", "drained")
  end
  return result
end
if redis.call("LLEN", keys.wait) == 0 and redis.call("LLEN", keys.active) == 0
    and redis.call("ZCARD", keys.prioritized) == 0 then
  emitUntrimmed("event", "drained")
end
return 0
