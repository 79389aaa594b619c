--[[
  addLog: append a line to a job's log, keeping only the last N lines when asked.

  KEYS[1]      the queue's meta key; ARGV[1..3] prefix, queue name, now; ARGV[4] job id; ARGV[5] line;
  ARGV[6] keep the last N lines ("" = all). Returns the number of lines kept, or -1 if the job is missing.
]]
--@include "common"
local keys = queueKeys()
local jobKey = keys.base .. ARGV[4]
if redis.call("EXISTS", jobKey) == 0 then return -1 end
local count = redis.call("RPUSH", jobKey .. ":logs", ARGV[5])
local keep = tonumber(ARGV[6])
if keep then
  redis.call("LTRIM", jobKey .. ":logs", -keep, -1)
  return math.min(count, keep)
end
return count
