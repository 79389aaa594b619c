--[[
  obliterate: delete the whole queue — every job with its sub-keys, then the queue's own keys.
  The caller pauses the queue first (so a refusal leaves it paused, as in BullMQ).

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] force ("1"/"0").
  Returns 0, or -1 when active jobs exist and force is not given.
]]
--@include "common"
local keys = queueKeys()
if ARGV[4] ~= "1" and redis.call("LLEN", keys.active) > 0 then return -1 end
local function dropAll(key, isList)
  local ids
  if isList then ids = redis.call("LRANGE", key, 0, -1) else ids = redis.call("ZRANGE", key, 0, -1) end
  for _, jobId in ipairs(ids) do removeJobKeys(keys.base .. jobId) end
end
for _, k in ipairs({keys.active, keys.wait, keys.paused}) do dropAll(k, true) end
for _, k in ipairs({keys.prioritized, keys.delayed, keys.completed, keys.failed, keys.waitingChildren}) do
  dropAll(k, false)
end
for _, schedulerId in ipairs(redis.call("ZRANGE", keys["repeat"], 0, -1)) do
  redis.call("DEL", keys["repeat"] .. ":" .. schedulerId)
end
-- deduplication keys of this queue, and the jobs kept for later by keepLastIfActive
for _, pattern in ipairs({"de:*", "dn:*"}) do
  local cursor = "0"
  repeat
    local page = redis.call("SCAN", cursor, "MATCH", keys.base .. pattern, "COUNT", 1000)
    cursor = page[1]
    for _, k in ipairs(page[2]) do redis.call("DEL", k) end
  until cursor == "0"
end
redis.call("DEL", keys.wait, keys.paused, keys.active, keys.prioritized, keys.pc, keys.delayed, keys.completed,
  keys.failed, keys.stalled, keys.stalledCheck, keys.id, keys.meta, keys.events, keys.marker, keys.limiter,
  keys.waitingChildren, keys["repeat"], keys.base .. "metrics:completed", keys.base .. "metrics:failed")
return 0
