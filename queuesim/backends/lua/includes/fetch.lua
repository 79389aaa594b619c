--[[
  The fetch step shared by moveToActive and moveToFinished's "fetch next":
  promote due delayed jobs, respect the rate limiter, pause and global concurrency, then take the next job
  (wait first, prioritized only when wait is empty: priority-0 jobs always run before prioritized ones).

  Returns { jobFields or 0, jobId or 0, rateLimitTtl, nextDelayedMs, pausedOrMaxed }.
]]
local function fetchNextJob(keys, meta, now, token, lockMs, workerMax, workerDuration, workerName)
  promoteDueDelayed(keys, meta, keys.base, now)

  local max = meta.max or workerMax
  local duration = workerDuration or meta.duration
  if max then
    local used = tonumber(redis.call("GET", keys.limiter) or "0")
    if used >= max then
      local pttl = redis.call("PTTL", keys.limiter)
      if pttl > 0 then return {0, 0, pttl, 0, 0} end
      -- a window in its very last millisecond: drop it, so that this start opens a fresh window
      if pttl == 0 then redis.call("DEL", keys.limiter) end
    end
  end

  if meta.paused or isMaxed(meta, keys.active) then return {0, 0, 0, 0, 1} end

  local jobId = redis.call("RPOPLPUSH", keys.wait, keys.active)
  if not jobId then
    local popped = redis.call("ZPOPMIN", keys.prioritized)
    if popped[1] then
      jobId = popped[1]
      redis.call("LPUSH", keys.active, jobId)
    else
      redis.call("DEL", keys.pc)
    end
  end

  if not jobId then
    local first = redis.call("ZRANGE", keys.delayed, 0, 0, "WITHSCORES")
    local nextDue = 0
    if first[2] then nextDue = math.floor(tonumber(first[2]) / DELAY_SHIFT) end
    return {0, 0, 0, nextDue, 0}
  end

  if max then
    if redis.call("INCR", keys.limiter) == 1 then
      redis.call("PEXPIRE", keys.limiter, duration)
    end
  end
  local jobKey = keys.base .. jobId
  if token ~= "0" then
    redis.call("SET", jobKey .. ":lock", token, "PX", lockMs)
  end
  emit(keys.events, meta.maxEvents, "event", "active", "jobId", jobId, "prev", "waiting")
  if workerName and workerName ~= "" then
    redis.call("HSET", jobKey, "processedOn", now, "pb", workerName)
  else
    redis.call("HSET", jobKey, "processedOn", now)
  end
  redis.call("HINCRBY", jobKey, "ats", 1)
  addBaseMarkerIfReady(keys.marker, meta, keys.active)
  return {hashToArray(jobKey), jobId, 0, 0, 0}
end
