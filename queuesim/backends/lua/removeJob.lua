--[[
  removeJob: delete a job from whatever state it is in, with its logs and sub-keys; emit "removed".
  Refused while a worker holds the job's lock, and for a job scheduler's pending iteration.

  Flows (bullmq-semantics §5.3):
  * a removed child leaves its parent's dependencies; a parent left with none is taken out of
    waiting-children and pushed to the end of wait (or paused) with a "waiting {prev: waiting-children}" event,
    whatever its priority or delay (BullMQ does the same when a removal releases a parent);
  * with remove-children, a job's children go first, depth first: the processed ones, then those that failed
    it or were ignored, then the pending ones. Pending children live in a SET, whose order Redis does not fix;
    they are taken in sorted key order so that every backend removes (and reports) them in the same order;
  * with remove-children the removal is refused when any pending descendant is locked (nothing is removed).

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id;
  ARGV[5]      "1" to remove the job's children too, "0" to leave them.
  Returns 1 when removed, 0 when the job does not exist, -2 when locked, -8 when owned by a scheduler.
]]
--@include "common"
--@include "flows"
local keys = queueKeys()
local jobId = ARGV[4]
local withChildren = ARGV[5] == "1"
local jobKey = keys.base .. jobId

-- "<prefix>:<queue>:<id>" -> "<prefix>:<queue>", "<id>". Neither a prefix nor a queue name contains ":", but a
-- job id may (a scheduler's iterations are "repeat:<schedulerId>:<ms>").
local function splitJobKey(key)
  return string.match(key, "^([^:]+:[^:]+):(.+)$")
end

local function sortedMembers(setKey)
  local members = redis.call("SMEMBERS", setKey)
  table.sort(members)
  return members
end

local function isLocked(key)
  if redis.call("EXISTS", key .. ":lock") == 1 then return true end
  if withChildren then
    for _, childKey in ipairs(sortedMembers(key .. ":dependencies")) do
      if isLocked(childKey) then return true end
    end
  end
  return false
end

-- The job leaves its parent's dependencies (the parent is read from the job when not given); a parent left
-- without any goes back to the end of wait or paused.
local function unlinkFromParent(key, parentKey)
  if not parentKey then
    parentKey = redis.call("HGET", key, "parentKey")
    if not parentKey or redis.call("EXISTS", parentKey) == 0 then return end
  end
  local depsKey = parentKey .. ":dependencies"
  if redis.call("SREM", depsKey, key) == 0 or redis.call("SCARD", depsKey) > 0 then return end
  local parentQueueKey, parentId = splitJobKey(parentKey)
  if not parentQueueKey then return end
  local pk = flowQueueKeys(parentQueueKey)
  if redis.call("ZREM", pk.waitingChildren, parentId) == 0 then return end
  local meta = readMeta(pk.meta)
  redis.call("RPUSH", targetList(meta, pk.wait, pk.paused), parentId)
  addBaseMarkerIfReady(pk.marker, meta, pk.active)
  redis.call("XADD", pk.events, "*", "event", "waiting", "jobId", parentId, "prev", "waiting-children")
end

local function removeTree(key, parentKey)
  local queueKey, id = splitJobKey(key)
  if not queueKey then return end
  local k = flowQueueKeys(queueKey)
  unlinkFromParent(key, parentKey)
  if withChildren then
    for _, childKey in ipairs(redis.call("HKEYS", key .. ":processed")) do removeTree(childKey, key) end
    for _, childKey in ipairs(redis.call("HKEYS", key .. ":failed")) do removeTree(childKey, key) end
    for _, childKey in ipairs(redis.call("ZRANGE", key .. ":unsuccessful", 0, -1)) do removeTree(childKey, key) end
    for _, childKey in ipairs(sortedMembers(key .. ":dependencies")) do removeTree(childKey, key) end
  end
  local where = findJobKeyName(k, id)
  if where == "wait" or where == "paused" or where == "active" then
    redis.call("LREM", k[where], 0, id)
  elseif where ~= "unknown" then
    local setKey = k[where]
    if where == "waiting-children" then setKey = k.waitingChildren end
    redis.call("ZREM", setKey, id)
  end
  releaseDedup(k.base, key, id)
  if removeJobKeys(key) > 0 then
    emit(k.events, readMeta(k.meta).maxEvents, "event", "removed", "jobId", id, "prev", where)
  end
end

if redis.call("EXISTS", jobKey) == 0 then return 0 end
if isSchedulerPendingJob(keys, jobId, jobKey) then return -8 end
if isLocked(jobKey) then return -2 end
removeTree(jobKey, nil)
return 1
