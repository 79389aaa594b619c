--[[
  setDeadLetterQueue (queuesim extension): route the jobs of a queue that fail for good to a dead-letter queue,
  or stop doing so, under one rule: a dead-letter queue serves exactly one queue.

  The queue a dead-letter queue serves (its owner) is written in the dead-letter queue's meta hash, field
  "dlqOf". An owner gives its dead-letter queue up once it routes its failures elsewhere (or nowhere) AND no dead
  job is left in the dead-letter queue's "failed" set: the jobs there still belong to it and are redriven to it.

  KEYS[1]      the queue's meta key
  ARGV[1..3]   prefix, queue name, now
  ARGV[4]      dead-letter queue name, "" = none

  Returns {0} when done. A refusal writes nothing and returns {code, queue}:
    {1, owner}  the dead-letter queue already serves the queue owner
    {2, owner}  it no longer serves owner but still holds owner's dead jobs
    {3, ""}     it has a dead-letter queue of its own
    {4, owner}  this queue is itself the dead-letter queue of owner
]]
--@include "common"
local keys = queueKeys()
local target = ARGV[4]

-- The queue a dead-letter queue serves (nil when none) and whether that queue still routes its failures there.
local function ownerOf(name)
  local base = keys.prefix .. ":" .. name .. ":"
  local owner = redis.call("HGET", base .. "meta", "dlqOf")
  if not owner then return nil, false end
  if redis.call("HGET", keys.prefix .. ":" .. owner .. ":meta", "dlq") == name then return owner, true end
  if redis.call("ZCARD", base .. "failed") > 0 then return owner, false end
  return nil, false
end

if target ~= "" then
  local owner, routing = ownerOf(target)
  if owner and owner ~= keys.queue then
    if routing then return {1, owner} end
    return {2, owner}
  end
  if redis.call("HEXISTS", keys.prefix .. ":" .. target .. ":meta", "dlq") == 1 then return {3, ""} end
  local served = ownerOf(keys.queue)
  if served then return {4, served} end
end

-- the dead-letter queue used until now is released when it holds no dead job any more
local current = redis.call("HGET", keys.meta, "dlq")
if current and current ~= target then
  local base = keys.prefix .. ":" .. current .. ":"
  if redis.call("HGET", base .. "meta", "dlqOf") == keys.queue and redis.call("ZCARD", base .. "failed") == 0 then
    redis.call("HDEL", base .. "meta", "dlqOf")
  end
end
if target == "" then
  redis.call("HDEL", keys.meta, "dlq")
else
  redis.call("HSET", keys.meta, "dlq", target)
  redis.call("HSET", keys.prefix .. ":" .. target .. ":meta", "dlqOf", keys.queue)
end
return {0}
