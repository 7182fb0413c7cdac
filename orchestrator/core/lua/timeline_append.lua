--@include append
-- Append one entry to a job's timeline (orchestrator/jobs/timeline.py), with the job's TTL when
-- the list is new (see append.lua).
-- KEYS[1] the job's timeline list   KEYS[2] the job hash
-- ARGV[1] the entry (JSON)   ARGV[2] '1': only while the job is kept (nothing written for a job
--         that has expired), '': always
-- Returns 1 (appended) or 0.
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
append(KEYS[1], KEYS[2], ARGV[1])
return 1
