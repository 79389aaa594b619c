--[[
  addJob: store a new job and put it in delayed, prioritized or wait (paused).

  KEYS[1]      the queue's meta key
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
  ARGV[17]     flow parent's job key ("" = none), stored as "parentKey"
  ARGV[18]     flow parent reference (JSON {id, queueKey, fpof?|cpof?|idof?|rdof?}), stored as "parent"
  ARGV[19]     "1" when this job is a flow parent whose children are added next: it waits in waiting-children

  Returns { jobId, outcome } with outcome "added", "duplicated" or "deduplicated"; or -5 when the parent does
  not exist, -7 when a job with this custom id already belongs to another parent.
]]
--@include "common"
--@include "flows"
local keys = queueKeys()
local meta = readMeta(keys.meta)
if not meta.maxEventsStored then
  redis.call("HSET", keys.meta, "opts.maxLenEvents", 10000)
end
local customId, name, data, opts = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local timestamp, delay, priority = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local lifo = ARGV[11] == "1"
local dedupId, dedupTtl = ARGV[12], tonumber(ARGV[13])
local schedulerId = ARGV[16]
local parentKey, parentData, waitsForChildren = ARGV[17], ARGV[18], ARGV[19] == "1"
local parentRef = nil
if parentKey ~= "" then
  if redis.call("EXISTS", parentKey) == 0 then return -5 end
  local ref = cjson.decode(parentData)
  parentRef = {key = parentKey, id = ref["id"], queueKey = ref["queueKey"]}
end

local counter = redis.call("INCR", keys.id)
local jobId = customId
if jobId == "" then jobId = tostring(counter) end
local jobKey = keys.base .. jobId

if customId ~= "" and redis.call("EXISTS", jobKey) == 1 then
  if parentRef then
    -- the existing job joins this parent, unless another (still existing) parent owns it
    local ownParent = redis.call("HGET", jobKey, "parentKey")
    if ownParent and ownParent ~= parentKey and redis.call("EXISTS", ownParent) == 1 then return -7 end
    if ownParent ~= parentKey then
      attachToParent(parentKey, parentRef.queueKey, parentRef.id, jobKey, keys.completed, jobId,
        tonumber(ARGV[3]))
      redis.call("HSET", jobKey, "parentKey", parentKey, "parent", parentData)
    end
  end
  emit(keys.events, meta.maxEvents, "event", "duplicated", "jobId", jobId)
  return {jobId, "duplicated"}
end

if dedupId ~= "" then
  local deKey = keys.base .. "de:" .. dedupId
  local extend, replace = ARGV[14] == "1", ARGV[15] == "1"
  local de = cjson.decode(opts)["de"]
  local keepLast = type(de) == "table" and de["keepLastIfActive"] == true
  local hasTtl = dedupTtl ~= nil and dedupTtl > 0
  local function setKey(owner)
    -- keepLastIfActive keys never expire: they must outlive the owner's time in "active"
    if hasTtl and not keepLast then
      redis.call("SET", deKey, owner, "PX", dedupTtl)
    else
      redis.call("SET", deKey, owner)
    end
  end
  local function report(owner)
    emit(keys.events, meta.maxEvents, "event", "debounced", "jobId", owner, "debounceId", dedupId)
    emit(keys.events, meta.maxEvents, "event", "deduplicated", "jobId", owner, "deduplicationId", dedupId,
      "deduplicatedJobId", jobId)
  end
  -- keepLastIfActive: while the owner runs, keep this job (the newest wins) to enqueue when the owner finishes
  local function keepForLater(owner)
    if not (keepLast and redis.call("LPOS", keys.active, owner)) then return false end
    local nextKey = keys.base .. "dn:" .. dedupId
    redis.call("DEL", nextKey)
    redis.call("HSET", nextKey, "name", name, "data", data, "opts", opts, "jid", jobId)
    redis.call("PERSIST", deKey)
    report(owner)
    return true
  end
  local owner = redis.call("GET", deKey)
  if replace then
    -- a still-delayed owner is dropped and this job takes its place
    if owner then
      if redis.call("ZREM", keys.delayed, owner) == 0 then
        keepForLater(owner)
        return {owner, "deduplicated"}
      end
      removeJobKeys(keys.base .. owner)
      redis.call("XADD", keys.events, "*", "event", "removed", "jobId", owner, "prev", "delayed")
      emit(keys.events, meta.maxEvents, "event", "debounced", "jobId", jobId, "debounceId", dedupId)
      emit(keys.events, meta.maxEvents, "event", "deduplicated", "jobId", jobId, "deduplicationId", dedupId,
        "deduplicatedJobId", owner)
      if hasTtl and not extend and not keepLast then
        redis.call("SET", deKey, jobId, "KEEPTTL")
      else
        setKey(jobId)
      end
    else
      setKey(jobId)
    end
  elseif hasTtl and extend then
    -- debounce: every duplicate restarts the window
    if owner then
      if keepForLater(owner) then return {owner, "deduplicated"} end
      setKey(owner)
      report(owner)
      return {owner, "deduplicated"}
    end
    setKey(jobId)
  else
    -- simple (no ttl: until the owner finishes) or throttle (ttl: until the window ends)
    local taken
    if hasTtl and not keepLast then
      taken = redis.call("SET", deKey, jobId, "PX", dedupTtl, "NX")
    else
      taken = redis.call("SET", deKey, jobId, "NX")
    end
    if not taken then
      owner = redis.call("GET", deKey)
      if not keepForLater(owner) then report(owner) end
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
if parentRef then
  table.insert(fields, "parentKey"); table.insert(fields, parentKey)
  table.insert(fields, "parent"); table.insert(fields, parentData)
end
redis.call("HSET", jobKey, unpack(fields))
emit(keys.events, meta.maxEvents, "event", "added", "jobId", jobId, "name", name)

if waitsForChildren then
  -- a flow parent: its delay and priority apply once its children are done
  redis.call("ZADD", keys.waitingChildren, timestamp, jobId)
  emit(keys.events, meta.maxEvents, "event", "waiting-children", "jobId", jobId)
else
  placeNewJob(keys, meta, jobId, timestamp + delay, delay, priority, lifo)
end
if parentRef then
  redis.call("SADD", parentKey .. ":dependencies", jobKey)
end
return {jobId, "added"}
