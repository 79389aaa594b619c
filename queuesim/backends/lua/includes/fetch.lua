--[[
  The fetch step shared by moveToActive and moveToFinished's "fetch next":
  promote due delayed jobs, respect the rate limiter, pause and global concurrency, then take the next job
  (wait first, prioritized only when wait is empty: priority-0 jobs always run before prioritized ones).

  Returns { jobFields or 0, jobId or 0, rateLimitTtl, nextDelayedMs, pausedOrMaxed }.
]]
-- An attempt starts: the job hash gets processedOn, the worker's name (when it has one) and one more started
-- attempt ("ats"). The hash was just read (``fields``, as HGETALL gives it), so one HSET writes all three, and
-- ``fields`` is brought up to date in place: a field keeps its place and a new one goes at the end, in the order
-- a Redis hash keeps them.
local function startAttempt(jobKey, fields, now, workerName)
  local at, started = {}, 0
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == "processedOn" or f == "pb" or f == "ats" then at[f] = i + 1 end
    if f == "ats" then
      started = tonumber(fields[i + 1])
      if not started or started ~= math.floor(started) then error("ERR hash value is not an integer") end
    end
  end
  local args = {"processedOn", string.format("%d", now)}
  if workerName and workerName ~= "" then args[3] = "pb"; args[4] = workerName end
  args[#args + 1] = "ats"
  args[#args + 1] = string.format("%d", started + 1)
  redis.call("HSET", jobKey, unpack(args))
  for i = 1, #args, 2 do
    local f = args[i]
    if at[f] then
      fields[at[f]] = args[i + 1]
    else
      fields[#fields + 1] = f
      fields[#fields + 1] = args[i + 1]
    end
  end
end

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
  local fields = redis.call("HGETALL", jobKey)
  startAttempt(jobKey, fields, now, workerName)
  addBaseMarkerIfReady(keys.marker, meta, keys.active)
  return {fields, jobId, 0, 0, 0}
end
