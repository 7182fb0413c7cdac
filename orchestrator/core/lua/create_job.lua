-- Create a queued job (jobs.py), or return the job an earlier request with the same
-- idempotency key made, in one step: the key, the client's budget check and commit, the job
-- hash, its indexes, its two due-time entries and the first timeline entry. A job the budget
-- refuses writes nothing; a replayed key commits nothing.
-- KEYS[1] job hash   KEYS[2] its timeline   KEYS[3] idempotency key ('' when the request has none)
-- KEYS[4] due:submit   KEYS[5] due:deadline   KEYS[6] idx:jobs   KEYS[7] idx:status:queued
-- KEYS[8] idx:client:{client}   KEYS[9] idx:client:{client}:status:queued
-- KEYS[10] idx:model:{model}   KEYS[11] idx:client:{client}:model:{model}
-- KEYS[12] client:{client}: its budget (field monthly_budget_micros) and unpriced policy (field
--          unpriced), as orchestrator/core/budgets.py names them (CLIENT_BUDGET, CLIENT_UNPRICED)
-- KEYS[13] the client's committed spend for this month (integer micro-dollars)
-- ARGV[1] job id   ARGV[2] created (ms, the index score)   ARGV[3] JSON job fields
-- ARGV[4] first submit due (unix s)   ARGV[5] deadline (unix s)
-- ARGV[6] JSON idempotency record   ARGV[7] idempotency TTL (s)   ARGV[8] JSON timeline entry
-- ARGV[9] the job's estimated cost in micro-dollars ('' when the model has no price)
-- ARGV[10] when the month's counter expires (unix s)
-- Returns {1, budget, committed after} when created, {0, idempotency record} when the key
-- named an earlier job, {2, budget, committed} when the client refuses unpriced jobs and
-- {3, budget, committed} when the job would take committed spend over the budget
-- (budget '' when the client has none).
local job, tl, idem = KEYS[1], KEYS[2], KEYS[3]
local client, committed_key = KEYS[12], KEYS[13]
local id, created_ms = ARGV[1], ARGV[2]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing then return {0, existing} end
end
local budget = redis.call('HGET', client, 'monthly_budget_micros') or ''
local committed = tonumber(redis.call('GET', committed_key) or '0')
local cost = ARGV[9]
if cost == '' then
  if redis.call('HGET', client, 'unpriced') == 'refuse' then
    return {2, budget, committed}
  end
  cost = '0'
end
if budget ~= '' and committed + tonumber(cost) > tonumber(budget) then
  return {3, budget, committed}
end
if idem ~= '' then redis.call('SET', idem, ARGV[6], 'EX', ARGV[7]) end
committed = redis.call('INCRBY', committed_key, cost)
redis.call('EXPIREAT', committed_key, ARGV[10])
local fields = cjson.decode(ARGV[3])
for k, v in pairs(fields) do redis.call('HSET', job, k, v) end
for i = 6, 11 do redis.call('ZADD', KEYS[i], created_ms, id) end
redis.call('ZADD', KEYS[4], ARGV[4], id)
redis.call('ZADD', KEYS[5], ARGV[5], id)
redis.call('RPUSH', tl, ARGV[8])
return {1, budget, committed}
