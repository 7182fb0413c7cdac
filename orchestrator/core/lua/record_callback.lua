--@include claim
-- Record one Pixazo callback: recognise a duplicate, keep the body for the apply task, and claim
-- the job for the callback's request in this same step (so no reconcile tick that runs before
-- the apply task can resubmit a job Pixazo has told us it holds).
-- KEYS[1] job hash   KEYS[2] its timeline   KEYS[3] seen-counter of (job, request_id, status)
-- KEYS[4] inbox entry   KEYS[5] due:callback (inbox ids not yet applied)
-- ARGV[1] inbox id   ARGV[2] JSON timeline entry   ARGV[3] JSON inbox entry
-- ARGV[4] seen TTL   ARGV[5] inbox TTL   ARGV[6] duplicates kept on the timeline
-- ARGV[7] when beat re-sends the apply task   ARGV[8] the callback's request_id
-- Returns -1 unknown job, 0 duplicate, 1 new
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seen = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[4])
local entry = cjson.decode(ARGV[2])
if seen > 1 then
  if seen <= tonumber(ARGV[6]) + 1 then
    entry['duplicate'] = true
    redis.call('RPUSH', KEYS[2], cjson.encode(entry))
  end
  return 0
end
redis.call('HSET', KEYS[1], 'charge_risk', '1')
entry['claimed'] = claim_request(KEYS[1], ARGV[8], '') == 1
entry['duplicate'] = false
entry['inbox_id'] = ARGV[1]
redis.call('RPUSH', KEYS[2], cjson.encode(entry))
redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[5])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
return 1
