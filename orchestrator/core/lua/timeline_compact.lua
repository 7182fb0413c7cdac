-- Pack a job's timeline into its hash (orchestrator/jobs/timeline.py): the packed text, standing
-- for the entries packed before (field ARGV[4], if any) and the list's first ARGV[1] elements,
-- becomes the field; those elements leave the list (the key goes when none is left). Only if
-- both are still what the caller read: compaction is the only writer of the field and the only
-- one that removes from the list's head, every other writer appends.
-- KEYS[1] the job's timeline list   KEYS[2] the job hash
-- ARGV[1] number of elements read from the head   ARGV[2] the first of them, as read ('' none)
-- ARGV[3] the packed text   ARGV[4] the job's packed field as read ('' when it had none)
-- ARGV[5] the name of that field
-- Returns 1 (compacted) or 0 (something changed, or the job is gone: nothing written).
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
if (redis.call('HGET', KEYS[2], ARGV[5]) or '') ~= ARGV[4] then return 0 end
if (redis.call('LINDEX', KEYS[1], 0) or '') ~= ARGV[2] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
redis.call('HSET', KEYS[2], ARGV[5], ARGV[3])
return 1
