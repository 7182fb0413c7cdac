--@include claim
--@include append
-- Record one Pixazo callback: recognise a duplicate, keep the body for the apply (the receiver's,
-- or the task's after the grace), and claim the job for the callback's request in this same
-- step (so no reconcile tick that runs before the apply can resubmit a job Pixazo has told us
-- it holds). The seen-counter of (request_id, status) is a field of the job hash: it lives as
-- long as the job, which is as long as a callback for it can be recognised at all.
-- KEYS[1] job hash   KEYS[2] its timeline   KEYS[3] inbox entry
-- KEYS[4] due:callback (inbox ids not yet applied)
-- ARGV[1] inbox id   ARGV[2] JSON timeline entry   ARGV[3] JSON inbox entry
-- ARGV[4] the job hash field counting this (request_id, status), "<prefix><digest>:<status>";
--         the field named as before issue 12, "cbseen:<request_id>:<status>", is counted
--         instead when the job has it (a callback recorded by an earlier version)
-- ARGV[5] inbox TTL
-- ARGV[6] duplicates kept on the timeline   ARGV[7] when beat re-sends the apply task
-- ARGV[8] the callback's request_id   ARGV[9..] job hash fields to read back for a new one
-- Returns {-1} unknown job, {0} duplicate, {1, value of ARGV[9], ...} new (as recorded)
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local counter = 'cbseen:' .. ARGV[8] .. ':' .. string.match(ARGV[4], '[^:]*$')
if redis.call('HEXISTS', KEYS[1], counter) == 0 then counter = ARGV[4] end
local seen = redis.call('HINCRBY', KEYS[1], counter, 1)
local entry = cjson.decode(ARGV[2])
if seen > 1 then
  if seen <= tonumber(ARGV[6]) + 1 then
    entry['duplicate'] = true
    append(KEYS[2], KEYS[1], cjson.encode(entry))
  end
  return {0}
end
redis.call('HSET', KEYS[1], 'charge_risk', '1')
entry['claimed'] = claim_request(KEYS[1], ARGV[8], '') == 1
entry['duplicate'] = false
entry['inbox_id'] = ARGV[1]
append(KEYS[2], KEYS[1], cjson.encode(entry))
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[5])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
local answer = {1}
if #ARGV >= 9 then
  local values = redis.call('HMGET', KEYS[1], unpack(ARGV, 9))
  for i = 1, #ARGV - 8 do answer[i + 1] = values[i] end
end
return answer
