-- Create a queued job (jobs.py), or return the job an earlier request with the same
-- idempotency key made, in one step: the key, the job hash, its indexes, its two due-time
-- entries and the first timeline entry.
-- KEYS[1] job hash   KEYS[2] its timeline   KEYS[3] idempotency key ('' when the request has none)
-- KEYS[4] due:submit   KEYS[5] due:deadline   KEYS[6] idx:jobs   KEYS[7] idx:status:queued
-- KEYS[8] idx:client:{client}   KEYS[9] idx:client:{client}:status:queued
-- KEYS[10] idx:model:{model}   KEYS[11] idx:client:{client}:model:{model}
-- ARGV[1] job id   ARGV[2] created (ms, the index score)   ARGV[3] JSON job fields
-- ARGV[4] first submit due (unix s)   ARGV[5] deadline (unix s)
-- ARGV[6] JSON idempotency record   ARGV[7] idempotency TTL (s)   ARGV[8] JSON timeline entry
-- Returns {1, ''} when created, {0, idempotency record} when the key named an earlier job.
local job, tl, idem = KEYS[1], KEYS[2], KEYS[3]
local id, created_ms = ARGV[1], ARGV[2]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing then return {0, existing} end
  redis.call('SET', idem, ARGV[6], 'EX', ARGV[7])
end
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', job, k, v) end
for i = 6, 11 do redis.call('ZADD', KEYS[i], created_ms, id) end
redis.call('ZADD', KEYS[4], ARGV[4], id)
redis.call('ZADD', KEYS[5], ARGV[5], id)
redis.call('RPUSH', tl, ARGV[8])
return {1, ''}
