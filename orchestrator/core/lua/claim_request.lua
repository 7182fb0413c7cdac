--@include claim
-- Claim a job for a request whose submit answer came back to a superseded attempt.
-- KEYS[1] job hash
-- ARGV[1] Pixazo request_id, ARGV[2] the generation the answering attempt belonged to
-- Returns -1 if the job is gone, 1 if the job is now bound to the request, 0 if it was not claimable (it is then
-- retired, so that its progress or failure never touches the job's current request).
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('HSET', KEYS[1], 'charge_risk', '1')
if claim_request(KEYS[1], ARGV[1], ARGV[2]) == 1 then return 1 end
if redis.call('HGET', KEYS[1], 'request_id') == ARGV[1] then return 1 end
local retired = redis.call('HGET', KEYS[1], 'retired_request_ids')
local list = (retired and retired ~= '') and cjson.decode(retired) or {}
for _, old in ipairs(list) do
  if old == ARGV[1] then return 0 end
end
table.insert(list, ARGV[1])
redis.call('HSET', KEYS[1], 'retired_request_ids', cjson.encode(list))
return 0
