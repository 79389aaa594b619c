--[[
  Flows: a parent job waits in "waiting-children" until its children are done.

  The parent's ":dependencies" SET holds the job keys of its pending children. When a child completes, its key
  moves to the parent's ":processed" HASH (value = the child's return value); when a child fails for good, its
  failure policy (stored in the child's "parent" field: fpof, cpof, idof or rdof) decides what happens to the
  parent. A parent whose dependencies are all gone is released to delayed (if it has a delay), prioritized or
  the head of wait. The parent may live in another queue under the same prefix, so its keys are built here
  from its queue key "<prefix>:<queue>". Needs the "common" include.
]]

-- The keys of the queue "<prefix>:<queue>" that releasing a parent (or removing a job of a flow) touches.
local function flowQueueKeys(queueKey)
  local base = queueKey .. ":"
  return {
    wait = base .. "wait", paused = base .. "paused", active = base .. "active", prioritized = base .. "prioritized",
    pc = base .. "pc", delayed = base .. "delayed", marker = base .. "marker", events = base .. "events",
    meta = base .. "meta", waitingChildren = base .. "waiting-children", completed = base .. "completed",
    failed = base .. "failed", base = base,
  }
end

-- Take a parent out of waiting-children (only if it is there) and make it ready, or delayed by its delay.
local function releaseParent(queueKey, parentId, parentKey, now)
  local pq = flowQueueKeys(queueKey)
  if redis.call("ZREM", pq.waitingChildren, parentId) == 0 then return end
  local meta = readMeta(pq.meta)
  local f = redis.call("HMGET", parentKey, "priority", "delay")
  local priority, delay = tonumber(f[1]) or 0, tonumber(f[2]) or 0
  if delay > 0 then
    local due = now + delay
    addDelayed(pq.delayed, parentId, due)
    emit(pq.events, meta.maxEvents, "event", "delayed", "jobId", parentId, "delay", due)
    refreshDelayMarker(pq.marker, pq.delayed)
    return
  end
  if priority == 0 then
    -- a released parent goes to the head of wait: it is next to run
    redis.call("RPUSH", targetList(meta, pq.wait, pq.paused), parentId)
  else
    addToPrioritized(pq.prioritized, pq.pc, parentId, priority, false)
  end
  addBaseMarkerIfReady(pq.marker, meta, pq.active)
  emit(pq.events, meta.maxEvents, "event", "waiting", "jobId", parentId, "prev", "waiting-children")
end

-- The parent reference stored on a child: its id, queue key and failure policy (nil when there is none).
local function readParentRef(parentKey, parentJson)
  if not parentKey then return nil end
  local ok, ref = pcall(cjson.decode, parentJson or "")
  if not ok or type(ref) ~= "table" then ref = {} end
  -- the parent key is "<queueKey>:<id>"; fall back to it when the stored JSON lacks a field
  local queueKey, parentId = string.match(parentKey, "^(.*):([^:]+)$")
  return {
    key = parentKey,
    id = ref["id"] or parentId,
    queueKey = ref["queueKey"] or queueKey,
    fpof = ref["fpof"] == true, cpof = ref["cpof"] == true, idof = ref["idof"] == true, rdof = ref["rdof"] == true,
  }
end

-- A child completed: record its return value with the parent and release the parent when nothing is pending.
local function childCompleted(ref, childKey, returnValue, now)
  local depsKey = ref.key .. ":dependencies"
  if redis.call("SREM", depsKey, childKey) == 1 then
    redis.call("HSET", ref.key .. ":processed", childKey, returnValue)
    if redis.call("SCARD", depsKey) == 0 then
      releaseParent(ref.queueKey, ref.id, ref.key, now)
    end
  end
end

-- A child failed for good: apply its failure policy. Without one, the parent keeps waiting for it.
local function childFailed(ref, childKey, reason, now)
  if not (ref.fpof or ref.cpof or ref.idof or ref.rdof) then return end
  local depsKey = ref.key .. ":dependencies"
  if redis.call("SREM", depsKey, childKey) == 0 then return end
  if ref.fpof then
    -- the parent fails too: the next worker to fetch it fails it without running it
    redis.call("ZADD", ref.key .. ":unsuccessful", now, childKey)
    redis.call("HSET", ref.key, "defa", "child " .. childKey .. " failed")
    releaseParent(ref.queueKey, ref.id, ref.key, now)
  elseif ref.cpof then
    redis.call("HSET", ref.key .. ":failed", childKey, reason)
    releaseParent(ref.queueKey, ref.id, ref.key, now)
  else
    if ref.idof then redis.call("HSET", ref.key .. ":failed", childKey, reason) end
    if redis.call("SCARD", depsKey) == 0 then
      releaseParent(ref.queueKey, ref.id, ref.key, now)
    end
  end
end

-- A job joins a parent's dependencies; if the job already completed, its result counts at once.
local function attachToParent(parentKey, parentQueueKey, parentId, jobKey, completedKey, jobId, now)
  if redis.call("ZSCORE", completedKey, jobId) then
    redis.call("HSET", parentKey .. ":processed", jobKey, redis.call("HGET", jobKey, "returnvalue") or "null")
    if redis.call("SCARD", parentKey .. ":dependencies") == 0 then
      releaseParent(parentQueueKey, parentId, parentKey, now)
    end
  else
    redis.call("SADD", parentKey .. ":dependencies", jobKey)
  end
end
