--[[
  addJob: store a new job and put it in delayed, prioritized or wait (paused).

  KEYS[1..17]  the queue keys
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      custom job id ("" = next counter value)
  ARGV[5]      name
  ARGV[6]      data (JSON)
  ARGV[7]      opts (JSON, BullMQ's stored form)
  ARGV[8]      timestamp (ms)
  ARGV[9]      delay (ms)
  ARGV[10]     priority
  ARGV[11]     lifo ("1"/"0")
  ARGV[12]     deduplication id ("" = none)
  ARGV[13]     deduplication ttl (ms, "" = none)
  ARGV[14]     deduplication extend ("1"/"0")
  ARGV[15]     deduplication replace ("1"/"0")
  ARGV[16]     job scheduler id ("" = none), stored as "rjk"

  Returns { jobId, outcome } with outcome "added", "duplicated" or "deduplicated".
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
if not redis.call("HGET", keys.meta, "opts.maxLenEvents") then
  redis.call("HSET", keys.meta, "opts.maxLenEvents", 10000)
end
local customId, name, data, opts = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local timestamp, delay, priority = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local lifo = ARGV[11] == "1"
local dedupId, dedupTtl = ARGV[12], tonumber(ARGV[13])
local schedulerId = ARGV[16]

local counter = redis.call("INCR", keys.id)
local jobId = customId
if jobId == "" then jobId = tostring(counter) end
local jobKey = keys.base .. jobId

if customId ~= "" and redis.call("EXISTS", jobKey) == 1 then
  emit(keys.events, meta.maxEvents, "event", "duplicated", "jobId", jobId)
  return {jobId, "duplicated"}
end

if dedupId ~= "" then
  local deKey = keys.base .. "de:" .. dedupId
  local taken
  if dedupTtl then
    taken = redis.call("SET", deKey, jobId, "PX", dedupTtl, "NX")
  else
    taken = redis.call("SET", deKey, jobId, "NX")
  end
  if not taken then
    local owner = redis.call("GET", deKey)
    local replaced = false
    if ARGV[15] == "1" and redis.call("ZSCORE", keys.delayed, owner) then
      -- replace: a still-delayed owner gives way to the newest job
      redis.call("ZREM", keys.delayed, owner)
      removeJobKeys(keys.base .. owner)
      emit(keys.events, meta.maxEvents, "event", "removed", "jobId", owner, "prev", "delayed")
      if dedupTtl then
        redis.call("SET", deKey, jobId, "PX", dedupTtl)
      else
        redis.call("SET", deKey, jobId)
      end
      replaced = true
    end
    if not replaced then
      if ARGV[14] == "1" and dedupTtl then
        redis.call("PEXPIRE", deKey, dedupTtl)
      end
      emit(keys.events, meta.maxEvents, "event", "debounced", "jobId", owner, "debounceId", dedupId)
      emit(keys.events, meta.maxEvents, "event", "deduplicated", "jobId", owner, "deduplicationId", dedupId,
        "deduplicatedJobId", jobId)
      return {owner, "deduplicated"}
    end
  end
end

local fields = {"name", name, "data", data, "opts", opts, "timestamp", timestamp, "delay", delay,
  "priority", priority}
if dedupId ~= "" then
  table.insert(fields, "deid"); table.insert(fields, dedupId)
end
if schedulerId ~= "" then
  table.insert(fields, "rjk"); table.insert(fields, schedulerId)
end
redis.call("HSET", jobKey, unpack(fields))
emit(keys.events, meta.maxEvents, "event", "added", "jobId", jobId, "name", name)

if delay > 0 then
  local due = timestamp + delay
  addDelayed(keys.delayed, jobId, due)
  emit(keys.events, meta.maxEvents, "event", "delayed", "jobId", jobId, "delay", due)
  refreshDelayMarker(keys.marker, keys.delayed)
else
  addReady(keys, meta, jobId, priority, lifo)
  addBaseMarkerIfReady(keys.marker, meta, keys.active)
  emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId)
end
return {jobId, "added"}
