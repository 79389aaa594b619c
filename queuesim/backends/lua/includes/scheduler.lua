--[[
  Job schedulers (BullMQ's repeatable jobs): what the scheduler scripts share.

  A scheduler lives in two keys: the "repeat" sorted set maps its id to the due time of its pending iteration,
  and the hash "repeat:<schedulerId>" holds its settings (name, every | pattern, tz, limit, startDate, endDate,
  offset, data, opts) and "ic", the number of iterations created so far. Each iteration is an ordinary job
  with id "repeat:<schedulerId>:<dueMs>" and field "rjk" = scheduler id.
]]

-- The due time of an "every" scheduler's next iteration, and the offset of its grid (due mod every).
-- Without a previous iteration: start_date (if still ahead), else the next offset slot, else now. After one:
-- previous + every, and when that slot has passed, the next slot of the grid after now (missed slots are
-- skipped, not replayed).
local function everyNextMillis(prev, every, now, offset, startDate)
  local nxt
  if not prev then
    if startDate then
      nxt = math.max(startDate, now)
    elseif offset > 0 then
      nxt = math.floor(now / every) * every + offset
      if nxt <= now then nxt = nxt + every end
    else
      nxt = now
    end
  else
    nxt = prev + every
    if nxt < now then
      nxt = math.floor(now / every) * every + offset
      if nxt <= now then nxt = nxt + every end
    end
  end
  if offset == 0 then offset = nxt - math.floor(nxt / every) * every end
  return nxt, offset
end

-- Store one iteration and queue it: delayed until its due time, or ready now when it is already due. The
-- stored options get the iteration's id, delay, due time ("prevMillis") and number (opts.repeat.count).
local function addSchedulerIteration(keys, meta, jobId, schedulerId, name, data, optsJson, now, due, count)
  local delay = due - now
  if delay < 0 then delay = 0 end
  local opts = cjson.decode(optsJson)
  if type(opts["repeat"]) ~= "table" then opts["repeat"] = {} end
  opts["repeat"]["count"] = count
  opts["jobId"] = jobId
  opts["delay"] = delay
  opts["timestamp"] = now
  opts["prevMillis"] = due
  opts["repeatJobKey"] = schedulerId
  local priority = tonumber(opts["priority"] or 0) or 0
  redis.call("INCR", keys.id)
  redis.call("HSET", keys.base .. jobId, "name", name, "data", data, "opts", cjson.encode(opts), "timestamp", now,
    "delay", delay, "priority", priority, "rjk", schedulerId)
  emit(keys.events, meta.maxEvents, "event", "added", "jobId", jobId, "name", name)
  placeNewJob(keys, meta, jobId, now + delay, delay, priority, opts["lifo"] == true)
end
