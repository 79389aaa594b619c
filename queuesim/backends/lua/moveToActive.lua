--[[
  moveToActive: a worker fetches its next job.

  KEYS[1]      the queue's meta key (see includes/common.lua)
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      lock token ("0" = no lock)
  ARGV[5]      lock duration (ms)
  ARGV[6]      worker limiter max ("" = none)
  ARGV[7]      worker limiter duration (ms, "" = none)
  ARGV[8]      worker name (stored as processedBy "pb")

  Returns { jobFields or 0, jobId or 0, rateLimitTtl, nextDelayedMs, pausedOrMaxed }.
]]
--@include "common"
--@include "fetch"
local keys = queueKeys()
local meta = readMeta(keys.meta)
return fetchNextJob(keys, meta, tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]),
  tonumber(ARGV[7]), ARGV[8])
