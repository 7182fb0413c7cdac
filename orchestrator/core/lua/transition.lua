--@include append
-- The job state machine's one compare-and-set (state.py holds the table of allowed moves and
-- builds the KEYS below; every key the script touches is one of them).
-- KEYS[1] job hash, KEYS[2] its timeline list, KEYS[3] its events hash ("type:generation" -> id)
--         as jobs made before issue 12's layout keep it: a job without one keeps its event ids in
--         its own hash, field cfg.event_prefix .. "type:generation" (state.py event_field)
-- KEYS[4] the event hash for ARGV[12] (evt:{id}; untouched when no event is emitted)
-- KEYS[5] due:delivery   KEYS[6] due:deadline   KEYS[7] idx:jobs   KEYS[8] idx:client:{client}
-- KEYS[9] idx:model:{model}   KEYS[10] idx:client:{client}:model:{model}
-- KEYS[11..] the job due-time sets (keys.JOB_DUE_SETS, cfg.n_due_sets of them: cfg.due maps a
--            state to its set's offset in this run, from 0), then two keys per public status
--            named in ARGV[15], in that order: idx:status:{status} and
--            idx:client:{client}:status:{status}
-- ARGV[1] job id          ARGV[2] expected states, comma-separated   ARGV[3] new state
-- ARGV[4] now (unix s)    ARGV[5] now (ISO)     ARGV[6] JSON fields to write (null deletes)
-- ARGV[7] JSON timeline entry                   ARGV[8] due time in the new state's due set
-- ARGV[9] event type to emit ('' for none)      ARGV[10] JSON script config (state tables)
-- ARGV[11] fields to increment, comma-separated ARGV[12] id for the event, if one is created
-- ARGV[13] new deadline ('' keeps it)           ARGV[14] JSON {field: value} that must hold
--                                                        ('' matches an absent field)
-- ARGV[15] the public statuses whose index keys follow the due-time sets, comma-separated
--          (those of the expected states and of the new state)
-- ARGV[16] '' or the budget step (orchestrator/core/budgets.py), JSON: {"commit": micros,
--          "period", "expire_at"} commits the job's cost (an operator's retry); {"period"} is
--          the month the job committed in, as read before the call, whose cost a move to a
--          state in cfg.budget.states releases if Pixazo did not charge the job (no
--          cfg.budget.risk, or an error code in cfg.budget.uncharged_codes), once: the job's
--          cfg.budget.state goes from committed to released. The month's counter is then the
--          last key, KEYS[#KEYS] (absent when the period is '').
-- Returns {applied (1, 0: not in an expected state, 2: a required field differs, -1: no job,
--          3: the job's budget month is not ARGV[16]'s: read it again), previous state,
--          event created (1/0)}
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
local budget_step = (ARGV[16] or '') ~= '' and cjson.decode(ARGV[16]) or nil
if budget_step and not budget_step.commit
    and (redis.call('HGET', job, cfg.budget.period) or '') ~= budget_step.period then
  return {3, cur, 0}
end
for k, v in pairs(cjson.decode(ARGV[6])) do
  if v == cjson.null then redis.call('HDEL', job, k) else redis.call('HSET', job, k, v) end
end
-- A finished job's updated_at is its completed_at: only the latter is stored (store.restored).
if cfg.terminal[new] then
  redis.call('HSET', job, 'status', new, 'completed_at', now_iso)
  redis.call('HDEL', job, 'updated_at')
else
  redis.call('HSET', job, 'status', new, 'updated_at', now_iso)
end
for f in string.gmatch(ARGV[11], '[^,]+') do redis.call('HINCRBY', job, f, 1) end
local score = redis.call('HGET', job, 'indexed_ms') or redis.call('HGET', job, 'created_ms')
local client = redis.call('HGET', job, 'client_id')
local first_due, n_due = 11, cfg.n_due_sets
local status_idx, pos = {}, first_due + n_due
for p in string.gmatch(ARGV[15], '[^,]+') do
  status_idx[p] = {KEYS[pos], KEYS[pos + 1]}
  pos = pos + 2
end
local old_pub, new_pub = cfg.public[cur], cfg.public[new]
if old_pub ~= new_pub then
  redis.call('ZREM', status_idx[old_pub][1], id)
  redis.call('ZADD', status_idx[new_pub][1], score, id)
  redis.call('ZREM', status_idx[old_pub][2], id)
  redis.call('ZADD', status_idx[new_pub][2], score, id)
end
local old_set, new_set = cfg.due[cur], cfg.due[new]
if old_set and old_set ~= new_set then redis.call('ZREM', KEYS[first_due + old_set], id) end
if new_set then redis.call('ZADD', KEYS[first_due + new_set], ARGV[8], id) end
if cfg.terminal[new] then
  for i = first_due, first_due + n_due - 1 do redis.call('ZREM', KEYS[i], id) end
elseif cfg.terminal[cur] then
  -- An operator's retry brings the job back: keep it, and list it by when it came back, so
  -- that the index trim (by score) cannot drop it while it lives.
  for _, k in ipairs({job, tl, evts}) do redis.call('PERSIST', k) end
  redis.call('HDEL', job, 'completed_at')
  for i = 7, 10 do redis.call('ZADD', KEYS[i], score, id) end
end
if ARGV[13] ~= '' then redis.call('ZADD', KEYS[6], ARGV[13], id) end
local budget_note = nil
if budget_step then
  local b, counter = cfg.budget, KEYS[#KEYS]
  if budget_step.commit then
    redis.call('INCRBY', counter, budget_step.commit)
    redis.call('EXPIREAT', counter, budget_step.expire_at)
    redis.call('HSET', job, b.period, budget_step.period, b.micros, budget_step.commit,
      b.state, b.committed)
    budget_note = 'committed'
  elseif b.states[new] and budget_step.period ~= ''
      and redis.call('HGET', job, b.state) == b.committed then
    local err = cjson.decode(redis.call('HGET', job, 'error') or 'null')
    local code = type(err) == 'table' and err.code or nil
    if redis.call('HGET', job, b.risk) ~= '1' or (code and b.uncharged_codes[code]) then
      if redis.call('EXISTS', counter) == 1 then
        redis.call('DECRBY', counter, redis.call('HGET', job, b.micros) or '0')
      end
      redis.call('HSET', job, b.state, b.released)
      budget_note = 'released'
    end
  end
end
local entry = cjson.decode(ARGV[7])
if budget_note then entry['budget'] = budget_note end
entry['from'] = cur
entry['to'] = new
append(tl, job, cjson.encode(entry))
local created_event = 0
if ARGV[9] ~= '' then
  local generation = redis.call('HGET', job, 'generation') or '1'
  local name, prefix = ARGV[9] .. ':' .. generation, cfg.event_prefix
  local own = redis.call('EXISTS', evts) == 1  -- the events hash of an earlier layout
  local added
  if own then
    added = redis.call('HSETNX', evts, name, ARGV[12])
  else
    added = redis.call('HSETNX', job, prefix .. name, ARGV[12])
  end
  if added == 1 then
    local flat = redis.call('HGETALL', job)
    local snap, seq = {}, 0
    for i = 1, #flat, 2 do
      if string.sub(flat[i], 1, #prefix) == prefix then
        seq = seq + 1
      elseif flat[i] ~= cfg.timeline_field then  -- a retried job's packed timeline: not data
        snap[flat[i]] = flat[i + 1]
      end
    end
    if own then seq = redis.call('HLEN', evts) end
    snap['id'] = id  -- not stored in the job hash: its key names it
    redis.call('HSET', KEYS[4], 'id', ARGV[12], 'type', ARGV[9], 'job_id', id,
      'client_id', client, 'created_at', now_iso, 'snapshot', cjson.encode(snap),
      'state', 'pending', 'attempts', '0', 'seq', seq, 'generation', generation)
    redis.call('ZADD', KEYS[5], now, ARGV[12])
    created_event = 1
  end
end
if cfg.terminal[new] then  -- fields only the event's snapshot needs, not the finished job
  for _, k in ipairs(cfg.snapshot_only) do redis.call('HDEL', job, k) end
end
if cfg.terminal[new] and cfg.retention > 0 then
  for _, k in ipairs({job, tl, evts}) do redis.call('EXPIRE', k, cfg.retention) end
end
return {1, cur, created_event}
