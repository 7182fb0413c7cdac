-- Fragment (included by every script that appends to a job's timeline): append(tl, job, entry)
-- Once a finished job's timeline is packed into its hash (field tl, timeline_compact.lua), the
-- list is gone: an entry appended later (a late callback, an operator's action, a replay's
-- attempts) starts a new list, which gets the job's TTL so that nothing of the job outlives it.
local function append(tl, job, entry)
  redis.call('RPUSH', tl, entry)
  if redis.call('PTTL', tl) == -1 then
    local ttl = redis.call('PTTL', job)
    if ttl > 0 then redis.call('PEXPIRE', tl, ttl) end
  end
end
