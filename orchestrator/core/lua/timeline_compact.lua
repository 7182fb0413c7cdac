-- Replace the head of a job's timeline by one packed element (orchestrator/jobs/timeline.py),
-- only if the head is still what the caller read: compaction is the only writer that removes
-- from the head, every other writer appends, so the first ARGV[1] elements are those read.
-- KEYS[1] the job's timeline list
-- ARGV[1] number of elements read from the head   ARGV[2] the first of them, as read
-- ARGV[3] the packed element that stands for them
-- Returns 1 (compacted) or 0 (the head changed, or the list is gone: nothing written).
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[2] then
  return 0
end
-- Trimming every element deletes the key and its TTL: the packed list gets the same TTL back.
local ttl = redis.call('PTTL', KEYS[1])
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
redis.call('LPUSH', KEYS[1], ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
