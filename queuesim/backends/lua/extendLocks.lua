--[[
  extendLocks: a worker renews the locks of the jobs it is running.

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      lock duration (ms)
  ARGV[5..]    pairs of job id, token

  Returns the ids whose lock was missing or held by another token.
]]
--@include "common"
local keys = queueKeys()
local duration = tonumber(ARGV[4])
local failed = {}
for i = 5, #ARGV, 2 do
  local jobId, token = ARGV[i], ARGV[i + 1]
  local lockKey = keys.base .. jobId .. ":lock"
  if redis.call("GET", lockKey) == token then
    redis.call("SET", lockKey, token, "PX", duration)
    redis.call("SREM", keys.stalled, jobId)
  else
    table.insert(failed, jobId)
  end
end
return failed
