-- The job state machine's one compare-and-set (state.py holds the table of allowed moves).
-- KEYS[1] job hash, KEYS[2] its timeline list, KEYS[3] its events hash ("type:generation" -> id)
-- ARGV[1] job id          ARGV[2] expected states, comma-separated   ARGV[3] new state
-- ARGV[4] now (unix s)    ARGV[5] now (ISO)     ARGV[6] JSON fields to write (null deletes)
-- ARGV[7] JSON timeline entry                   ARGV[8] due time in the new state's due set
-- ARGV[9] event type to emit ('' for none)      ARGV[10] JSON script config (state tables)
-- ARGV[11] fields to increment, comma-separated ARGV[12] id for the event, if one is created
-- ARGV[13] new deadline ('' keeps it)           ARGV[14] JSON {field: value} that must hold
--                                                        ('' matches an absent field)
-- Returns {applied (1, 0: not in an expected state, 2: a required field differs, -1: no job),
--          previous state, event created (1/0)}
local job, tl, evts = KEYS[1], KEYS[2], KEYS[3]
local id, new, now, now_iso = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
local cur = redis.call('HGET', job, 'status')
if not cur then return {-1, '', 0} end
local expected = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then expected = true end end
if not expected then return {0, cur, 0} end
for k, v in pairs(cjson.decode(ARGV[14])) do
  if (redis.call('HGET', job, k) or '') ~= v then return {2, cur, 0} end
end
local cfg = cjson.decode(ARGV[10])
for k, v in pairs(cjson.decode(ARGV[6])) do
  if v == cjson.null then redis.call('HDEL', job, k) else redis.call('HSET', job, k, v) end
end
redis.call('HSET', job, 'status', new, 'updated_at', now_iso)
for f in string.gmatch(ARGV[11], '[^,]+') do redis.call('HINCRBY', job, f, 1) end
local score = redis.call('HGET', job, 'indexed_ms') or redis.call('HGET', job, 'created_ms')
local client = redis.call('HGET', job, 'client_id')
local old_pub, new_pub = cfg.public[cur], cfg.public[new]
if old_pub ~= new_pub then
  redis.call('ZREM', 'idx:status:' .. old_pub, id)
  redis.call('ZADD', 'idx:status:' .. new_pub, score, id)
  redis.call('ZREM', 'idx:client:' .. client .. ':status:' .. old_pub, id)
  redis.call('ZADD', 'idx:client:' .. client .. ':status:' .. new_pub, score, id)
end
local old_set, new_set = cfg.due[cur], cfg.due[new]
if old_set and old_set ~= new_set then redis.call('ZREM', old_set, id) end
if new_set then redis.call('ZADD', new_set, ARGV[8], id) end
if cfg.terminal[new] then
  for _, set in ipairs(cfg.job_due_sets) do redis.call('ZREM', set, id) end
  redis.call('HSET', job, 'completed_at', now_iso)
elseif cfg.terminal[cur] then
  -- An operator's retry brings the job back: keep it, and list it by when it came back, so
  -- that the index trim (by score) cannot drop it while it lives.
  for _, k in ipairs({job, tl, evts}) do redis.call('PERSIST', k) end
  redis.call('HDEL', job, 'completed_at')
  local model = redis.call('HGET', job, 'model')
  for _, idx in ipairs({'idx:jobs', 'idx:client:' .. client, 'idx:model:' .. model,
                        'idx:client:' .. client .. ':model:' .. model}) do
    redis.call('ZADD', idx, score, id)
  end
end
if ARGV[13] ~= '' then redis.call('ZADD', cfg.deadline_set, ARGV[13], id) end
local entry = cjson.decode(ARGV[7])
entry['from'] = cur
entry['to'] = new
redis.call('RPUSH', tl, cjson.encode(entry))
local created_event = 0
if ARGV[9] ~= '' then
  local generation = redis.call('HGET', job, 'generation') or '1'
  if redis.call('HSETNX', evts, ARGV[9] .. ':' .. generation, ARGV[12]) == 1 then
    local flat = redis.call('HGETALL', job)
    local snap = {}
    for i = 1, #flat, 2 do snap[flat[i]] = flat[i + 1] end
    local seq = redis.call('HLEN', evts)
    redis.call('HSET', 'evt:' .. ARGV[12], 'id', ARGV[12], 'type', ARGV[9], 'job_id', id,
      'client_id', client, 'created_at', now_iso, 'snapshot', cjson.encode(snap),
      'state', 'pending', 'attempts', '0', 'seq', seq, 'generation', generation)
    redis.call('ZADD', cfg.delivery_set, now, ARGV[12])
    created_event = 1
  end
end
if cfg.terminal[new] and cfg.retention > 0 then
  for _, k in ipairs({job, tl, evts}) do redis.call('EXPIRE', k, cfg.retention) end
end
return {1, cur, created_event}
