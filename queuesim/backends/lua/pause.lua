--[[
  pause: pause or resume the whole queue. Pausing renames wait to paused (new jobs go to paused), drops the
  wake-up marker and sets meta.paused; resuming does the reverse. Active jobs finish normally.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] "paused" or "resumed".
]]
--@include "common"
local keys = queueKeys()
local meta = readMeta(keys.meta)
if ARGV[4] == "paused" then
  if redis.call("EXISTS", keys.wait) == 1 then redis.call("RENAME", keys.wait, keys.paused) end
  redis.call("HSET", keys.meta, "paused", 1)
  redis.call("DEL", keys.marker)
else
  if redis.call("EXISTS", keys.paused) == 1 then redis.call("RENAME", keys.paused, keys.wait) end
  redis.call("HDEL", keys.meta, "paused")
  meta.paused = false
  if redis.call("LLEN", keys.wait) > 0 or redis.call("ZCARD", keys.prioritized) > 0 then
    addBaseMarkerIfReady(keys.marker, meta, keys.active)
  else
    refreshDelayMarker(keys.marker, keys.delayed)
  end
end
emit(keys.events, meta.maxEvents, "event", ARGV[4])
return 0
