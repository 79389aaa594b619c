--[[
  getState: the state of a job, as getState reports it ("waiting" for wait or paused).

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id.
]]
--@include "common"
local keys = queueKeys()
local where = findJobKeyName(keys, ARGV[4])
if where == "wait" or where == "paused" then return "waiting" end
return where
