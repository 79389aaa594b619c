--[[
  moveStalledJobsToWait: the stalled-jobs check (one effective run per stalled interval, queue-wide).

  A job is stalled when it was active at the previous check, has not been renewed or finished since, and its
  lock has expired. It goes back to the head of wait with stalledCounter + 1 (no attempt used). Past
  max_stalled_count it is marked with a deferred failure ("defa") that the next worker to fetch it applies.
  Then every job now active is marked for the next check.

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      max stalled count
  ARGV[5]      stalled interval (ms)
  ARGV[6]      reason text for the deferred failure

  Returns the ids moved back to wait.
]]
--@include "common"
local keys = queueKeys()
if redis.call("EXISTS", keys.stalledCheck) == 1 then return {} end
redis.call("SET", keys.stalledCheck, ARGV[3], "PX", tonumber(ARGV[5]))
local meta = readMeta(keys.meta)
local maxStalled = tonumber(ARGV[4])
redis.call("XTRIM", keys.events, "MAXLEN", "~", meta.maxEvents)

local recovered = {}
local marked = {}
for _, jobId in ipairs(redis.call("SMEMBERS", keys.stalled)) do marked[jobId] = true end
-- Walk the active list (newest fetch first) rather than the set, whose order depends on how the server stores
-- it: the order is then the same everywhere, and as each job is pushed to the head the oldest runs first.
for _, jobId in ipairs(redis.call("LRANGE", keys.active, 0, -1)) do
  local jobKey = keys.base .. jobId
  if marked[jobId] and redis.call("EXISTS", jobKey .. ":lock") == 0
      and redis.call("LREM", keys.active, 1, jobId) > 0 then
    local stalls = redis.call("HINCRBY", jobKey, "stc", 1)
    if stalls > maxStalled then
      local schedulerId = redis.call("HGET", jobKey, "rjk")
      if not (schedulerId and redis.call("ZSCORE", keys["repeat"], schedulerId)) then
        redis.call("HSET", jobKey, "defa", ARGV[6])
      end
    end
    redis.call("RPUSH", targetList(meta, keys.wait, keys.paused), jobId)
    addBaseMarkerIfReady(keys.marker, meta, keys.active)
    emit(keys.events, meta.maxEvents, "event", "waiting", "jobId", jobId, "prev", "active")
    emit(keys.events, meta.maxEvents, "event", "stalled", "jobId", jobId)
    table.insert(recovered, jobId)
  end
end
redis.call("DEL", keys.stalled)
local active = redis.call("LRANGE", keys.active, 0, -1)
for i = 1, #active, 5000 do
  redis.call("SADD", keys.stalled, unpack(active, i, math.min(i + 4999, #active)))
end
return recovered
