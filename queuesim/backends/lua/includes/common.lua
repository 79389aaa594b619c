--[[
  Shared helpers of queuesim's Lua scripts (expanded into each script by the loader).

  Conventions: every timestamp is passed in by the caller (ms); the queue's meta key is KEYS[1] and
  job keys are built from the queue base "<prefix>:<queue>:" given in ARGV; scores follow BullMQ v5:
    prioritized score = priority * 2^32 + (INCR pc mod 2^32)
    delayed score     = due_ms * 4096 + n  (n keeps FIFO order among up to 4096 jobs due in the same ms)
]]
local PRIORITY_SHIFT = 4294967296
local DELAY_SHIFT = 4096

-- Queue settings from the meta hash in one call.
local function readMeta(metaKey)
  local m = redis.call("HMGET", metaKey, "paused", "concurrency", "max", "duration", "opts.maxLenEvents", "dlq")
  return {
    paused = m[1] ~= false,
    concurrency = m[2] and tonumber(m[2]) or nil,
    max = m[3] and tonumber(m[3]) or nil,
    duration = m[4] and tonumber(m[4]) or nil,
    maxEvents = m[5] and tonumber(m[5]) or 10000,
    maxEventsStored = m[5] ~= false,
    dlq = m[6] or nil,
  }
end

local function emit(eventsKey, maxEvents, ...)
  redis.call("XADD", eventsKey, "MAXLEN", "~", maxEvents, "*", ...)
end

local function isMaxed(meta, activeKey)
  return meta.concurrency ~= nil and redis.call("LLEN", activeKey) >= meta.concurrency
end

-- "A ready job exists": wakes an idle worker.
local function addBaseMarker(markerKey)
  redis.call("ZADD", markerKey, 0, "0")
end

-- Tell idle workers when the next delayed job is due (or drop the hint when none is).
local function refreshDelayMarker(markerKey, delayedKey)
  local first = redis.call("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  if first[2] then
    redis.call("ZADD", markerKey, math.floor(tonumber(first[2]) / DELAY_SHIFT), "1")
  else
    redis.call("ZREM", markerKey, "1")
  end
end

local function addBaseMarkerIfReady(markerKey, meta, activeKey)
  if not meta.paused and not isMaxed(meta, activeKey) then
    addBaseMarker(markerKey)
  end
end

-- wait or paused, depending on the queue's paused flag.
local function targetList(meta, waitKey, pausedKey)
  if meta.paused then return pausedKey end
  return waitKey
end

local function pushToList(listKey, jobId, lifo)
  if lifo then
    redis.call("RPUSH", listKey, jobId)
  else
    redis.call("LPUSH", listKey, jobId)
  end
end

-- Add to the prioritized set: tail of the priority band, or head of it when atHead.
local function addToPrioritized(prioritizedKey, pcKey, jobId, priority, atHead)
  local score
  if atHead then
    score = priority * PRIORITY_SHIFT
  else
    score = priority * PRIORITY_SHIFT + (redis.call("INCR", pcKey) % PRIORITY_SHIFT)
  end
  redis.call("ZADD", prioritizedKey, score, jobId)
end

-- Put a ready job where workers take it from: wait/paused for priority 0, else the prioritized set.
local function addReady(keys, meta, jobId, priority, lifo)
  if priority == 0 then
    pushToList(targetList(meta, keys.wait, keys.paused), jobId, lifo)
  else
    addToPrioritized(keys.prioritized, keys.pc, jobId, priority, false)
  end
end

local function delayedScore(delayedKey, dueMs)
  local base = dueMs * DELAY_SHIFT
  local last = redis.call("ZREVRANGEBYSCORE", delayedKey, base + DELAY_SHIFT - 1, base, "WITHSCORES", "LIMIT", 0, 1)
  if last[2] then
    return math.min(tonumber(last[2]) + 1, base + DELAY_SHIFT - 1)
  end
  return base
end

local function addDelayed(delayedKey, jobId, dueMs)
  redis.call("ZADD", delayedKey, delayedScore(delayedKey, dueMs), jobId)
end

-- Move every delayed job that is due (due <= now) to wait/prioritized, at most 1000 per call.
-- A new job's first place: delayed until ``due`` when ``delay`` > 0, otherwise ready now (wait, paused or
-- prioritized, with the marker), each with its event. The job's hash and its "added" event come first.
local function placeNewJob(keys, meta, jobId, due, delay, priority, lifo)
  if delay > 0 then
    addDelayed(keys.delayed, jobId, due)
    emit(keys.events, meta.maxEvents, "event", "delayed", "jobId", jobId, "delay", due)
    refreshDelayMarker(keys.marker, keys.delayed)
  else
    addReady(keys, meta, jobId, priority, lifo)
    addBaseMarkerIfReady(keys.marker, meta, keys.active)
    emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId)
  end
end

local function promoteDueDelayed(keys, meta, base, now)
  local due = redis.call("ZRANGEBYSCORE", keys.delayed, 0, (now + 1) * DELAY_SHIFT - 1, "LIMIT", 0, 1000)
  if #due == 0 then return 0 end
  for _, jobId in ipairs(due) do
    redis.call("ZREM", keys.delayed, jobId)
    local jobKey = base .. jobId
    local priority = tonumber(redis.call("HGET", jobKey, "priority") or "0") or 0
    -- a promotion ignores lifo: always the tail of wait, or the tail of the priority band
    addReady(keys, meta, jobId, priority, false)
    redis.call("HSET", jobKey, "delay", 0)
    emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "delayed")
  end
  addBaseMarkerIfReady(keys.marker, meta, keys.active)
  return #due
end

-- Returns how many of those keys existed.
local function removeJobKeys(jobKey)
  return redis.call("DEL", jobKey, jobKey .. ":logs", jobKey .. ":lock", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end

-- A removed job releases its deduplication key when it still owns it, and drops the duplicate kept for later
-- by keepLastIfActive.
local function releaseDedup(base, jobKey, jobId)
  local deid = redis.call("HGET", jobKey, "deid")
  if deid then
    local deKey = base .. "de:" .. deid
    if redis.call("GET", deKey) == jobId then
      redis.call("DEL", deKey, base .. "dn:" .. deid)
    end
  end
end

-- The state a job is in, as the key name it was found under ("wait", "paused", …, or "unknown").
local function findJobKeyName(keys, jobId)
  if redis.call("ZSCORE", keys.completed, jobId) then return "completed" end
  if redis.call("ZSCORE", keys.failed, jobId) then return "failed" end
  if redis.call("ZSCORE", keys.delayed, jobId) then return "delayed" end
  if redis.call("ZSCORE", keys.prioritized, jobId) then return "prioritized" end
  if redis.call("LPOS", keys.active, jobId) then return "active" end
  if redis.call("LPOS", keys.wait, jobId) then return "wait" end
  if redis.call("LPOS", keys.paused, jobId) then return "paused" end
  if keys.waitingChildren and redis.call("ZSCORE", keys.waitingChildren, jobId) then return "waiting-children" end
  return "unknown"
end

--[[
  Every script receives one key, KEYS[1] = the queue's meta key (declared so that Redis Cluster routes the call;
  with a hash-tag prefix such as "{bull}" every key of the queue lives in that same slot), and the same three
  first arguments:
    ARGV[1] = key prefix, ARGV[2] = queue name, ARGV[3] = now (ms).
  The other key names are built here, so a call carries 4 arguments less per key than passing them all.
  Script-specific arguments start at ARGV[4].
]]
local function queueKeys()
  local prefix, queue = ARGV[1], ARGV[2]
  local base = prefix .. ":" .. queue .. ":"
  return {
    wait = base .. "wait", paused = base .. "paused", active = base .. "active",
    prioritized = base .. "prioritized", pc = base .. "pc", delayed = base .. "delayed",
    completed = base .. "completed", failed = base .. "failed", stalled = base .. "stalled",
    stalledCheck = base .. "stalled-check", id = base .. "id", meta = KEYS[1], events = base .. "events",
    marker = base .. "marker", limiter = base .. "limiter", waitingChildren = base .. "waiting-children",
    ["repeat"] = base .. "repeat",
    prefix = prefix, queue = queue, base = base,
  }
end

-- Lock check shared by every transition out of "active": 0 when the caller owns the job,
-- else BullMQ's code (-2 no lock, -6 another token holds it). Token "0" means "processed without a lock".
local function checkLock(jobKey, token)
  if token == "0" then return 0 end
  local lock = redis.call("GET", jobKey .. ":lock")
  if not lock then return -2 end
  if lock ~= token then return -6 end
  return 0
end

local function releaseLock(keys, jobKey, jobId, token)
  if token ~= "0" then redis.call("DEL", jobKey .. ":lock") end
  redis.call("SREM", keys.stalled, jobId)
end

-- Take a job out of "active" after checking the caller's lock. Returns 0, or a negative code. ``exists`` (optional)
-- is what the caller already learnt from EXISTS on the job key.
local function leaveActive(keys, jobKey, jobId, token, exists)
  if exists == nil then exists = redis.call("EXISTS", jobKey) == 1 end
  if not exists then return -1 end
  local code = checkLock(jobKey, token)
  if code ~= 0 then return code end
  if redis.call("LREM", keys.active, -1, jobId) == 0 then return -3 end
  releaseLock(keys, jobKey, jobId, token)
  return 0
end

-- Is this job the pending iteration of a live job scheduler? The "repeat" set holds, per scheduler, the due
-- time of its next iteration, whose id is "repeat:<schedulerId>:<dueMs>". Such a job cannot be removed,
-- drained or cleaned directly (BullMQ's code -8): only the scheduler itself may replace or remove it.
local function isSchedulerPendingJob(keys, jobId, jobKey)
  local schedulerId = redis.call("HGET", jobKey, "rjk")
  if not schedulerId then return false end
  local due = redis.call("ZSCORE", keys["repeat"], schedulerId)
  if not due then return false end
  return jobId == "repeat:" .. schedulerId .. ":" .. due
end

-- A finishing job (completed or failed for good) gives up its deduplication key. A key with a ttl stays until
-- it expires (throttle / debounce windows outlive the job); one without a ttl is deleted when this job still
-- owns it. ``deid`` is the job's deduplication id (its hash's "deid" field, false when it has none); it is
-- returned, or nil when the job has none.
local function releaseDedupOnFinish(base, deid, jobId)
  if not deid then return nil end
  local deKey = base .. "de:" .. deid
  local pttl = redis.call("PTTL", deKey)
  if pttl == 0 or (pttl == -1 and redis.call("GET", deKey) == jobId) then
    redis.call("DEL", deKey)
  end
  return deid
end
