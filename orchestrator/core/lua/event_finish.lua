--@include append
-- Finish with a delivery in one step (webhooks/outbound/outbox.py): give back the attempt's
-- endpoint lease, count and record the attempt (on the job's timeline, and compactly in the
-- event: its last few attempts), then settle, dead-letter or reschedule the event, and release
-- the delivery lock. A settled or dead event's hash is rewritten compact: without the plain
-- snapshot and the scheduling fields, with what a replay needs packed in short chunks
-- (webhooks/outbound/settled.py), so Redis keeps it as a listpack (it never converts a
-- hashtable back, hence the rewrite).
-- KEYS[1] the event hash      KEYS[2] the job's timeline     KEYS[3] due:delivery
-- KEYS[4] deliveries:dead     KEYS[5] the client's dead-letter set
-- KEYS[6] the endpoint's in-flight set    KEYS[7] the event's delivery lock
-- KEYS[8] the event's attempts list of earlier versions (only given its TTL, if it exists)
-- KEYS[9] the endpoint's waiting set (events deferred by its cap): the earliest is taken when
--         a delivered attempt gives the lease back, for the caller to hand the freed slot on
-- KEYS[10] the job hash: timeline entries are written only while it is kept (append.lua)
-- ARGV[1] event id            ARGV[2] outcome: delivered | skipped | dead | retry
-- ARGV[3] the settle note     ARGV[4] now (unix s)           ARGV[5] now (ISO 8601)
-- ARGV[6] retention (s)       ARGV[7] due_at (retry)         ARGV[8] next_attempt_at (retry)
-- ARGV[9] the attempts count this attempt follows ('' when no attempt was made: no record)
-- ARGV[10] the attempt's timeline entry (JSON)    ARGV[11] its compact record in the event
-- ARGV[12] how many compact records the event keeps
-- ARGV[13] when the attempt's lease lapses ('' when none is held)
-- ARGV[14] the lock's token ('' when not held)
-- ARGV[15] a timeline entry before the dead letter's ('' none)
-- ARGV[16] the dead letter's timeline entry ('' none)
-- ARGV[17] prefix of the packed data's fields (<prefix>0, <prefix>1...); '' keeps the stored
--          data fields as they are
-- ARGV[18..] its chunks, in order, replacing any stored packing (none with a prefix: the event
--          keeps no data, webhooks/outbound/settled.py FROM_JOB)
-- Returns {code, handed}: code 1 (done), 0 (the attempts count is no longer ARGV[9]: only the
-- lease was given back, nothing else written) or 2 (the event is gone: lease and lock given
-- back, no record); handed, the waiting event taken from KEYS[9] ('' when none).
local evt, id = KEYS[1], ARGV[1]
local function note(entry)  -- on the job's timeline, only while the job is kept
  if redis.call('EXISTS', KEYS[10]) == 1 then append(KEYS[2], KEYS[10], entry) end
end

local handed = ''
if ARGV[13] ~= '' then
  local score = redis.call('ZSCORE', KEYS[6], id)
  if score and tonumber(score) == tonumber(ARGV[13]) then
    redis.call('ZREM', KEYS[6], id)
    if ARGV[2] == 'delivered' then  -- a failing endpoint gets its deferred events at back-off
      handed = redis.call('ZPOPMIN', KEYS[9])[1] or ''
    end
  end
end

local function unlock()
  if ARGV[14] ~= '' and redis.call('GET', KEYS[7]) == ARGV[14] then
    redis.call('DEL', KEYS[7])
  end
end

if redis.call('EXISTS', evt) == 0 then
  redis.call('ZREM', KEYS[3], id)
  unlock()
  return {2, handed}
end

if ARGV[9] ~= '' then
  if (redis.call('HGET', evt, 'attempts') or '0') ~= ARGV[9] then
    return {0, handed}
  end
  redis.call('HINCRBY', evt, 'attempts', 1)
  note(ARGV[10])
  local tries = redis.call('HINCRBY', evt, 'tries', 1)
  redis.call('HSET', evt, 't' .. tries, ARGV[11])
  redis.call('HDEL', evt, 't' .. (tries - tonumber(ARGV[12])))
end

local outcome, now = ARGV[2], ARGV[4]
if outcome == 'retry' then
  redis.call('HSET', evt, 'due_at', ARGV[7], 'next_attempt_at', ARGV[8], 'deferrals', '0')
  redis.call('ZADD', KEYS[3], ARGV[7], id)
  unlock()
  return {1, handed}
end

-- settled or dead: the compact rewrite
local dropped = {snapshot = true, due_at = true, next_attempt_at = true, deferrals = true,
  state = true, settled_at = true, note = true}
local prefix = ARGV[17]
local repack = ARGV[17] ~= ''
local function packed(name)  -- the chunks written now replace these (and an older packing)
  return repack and (string.match(name, '^' .. prefix .. '%d+$')
    or string.match(name, '^snapshot_z%d+$'))
end
local flat = redis.call('HGETALL', evt)
local fields = {}
for i = 1, #flat, 2 do
  local name = flat[i]
  if not dropped[name] and not packed(name) then
    fields[#fields + 1] = name
    fields[#fields + 1] = flat[i + 1]
  end
end
fields[#fields + 1] = 'state'
fields[#fields + 1] = outcome
fields[#fields + 1] = 'settled_at'
fields[#fields + 1] = ARGV[5]
fields[#fields + 1] = 'note'
fields[#fields + 1] = ARGV[3]
for i = 18, #ARGV do
  fields[#fields + 1] = prefix .. (i - 18)
  fields[#fields + 1] = ARGV[i]
end
redis.call('DEL', evt)
redis.call('HSET', evt, unpack(fields))
redis.call('EXPIRE', evt, ARGV[6])
redis.call('EXPIRE', KEYS[8], ARGV[6])
redis.call('ZREM', KEYS[3], id)
if outcome == 'dead' then
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('ZADD', KEYS[5], now, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (tonumber(now) - tonumber(ARGV[6])))
  if ARGV[15] ~= '' then note(ARGV[15]) end
  if ARGV[16] ~= '' then note(ARGV[16]) end
else
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
end
unlock()
return {1, handed}
