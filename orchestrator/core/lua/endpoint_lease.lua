-- Take an in-flight lease on a delivery endpoint (delivery.py: at most the cap at once).
-- KEYS[1] the endpoint's in-flight set (member: event id, score: when its lease lapses)
-- ARGV[1] now (unix s)     ARGV[2] when the new lease lapses     ARGV[3] event id
-- ARGV[4] the cap          ARGV[5] TTL of the set (seconds)
-- Returns 1 (lease taken), 0 (endpoint at its cap) or -1 (this event is already in flight).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return -1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
