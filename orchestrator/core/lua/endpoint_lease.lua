-- Take an in-flight lease on a delivery endpoint (delivery.py: at most the cap at once), or, when
-- the endpoint is at its cap, defer the event in the same step. One step, because an attempt that
-- ends (event_finish.lua: its lease given back, the earliest waiting event taken and handed on)
-- must either have freed its slot before this check or find this event waiting, and a handed-on
-- event must find its lock free: in two steps an attempt ending in between was missed, and the
-- event sat out its back-off and beat's tick with the endpoint idle.
-- KEYS[1] the endpoint's in-flight set (member: event id, score: when its lease lapses)
-- KEYS[2] the endpoint's waiting set (member: event id, score: when deferred)
-- KEYS[3] the event hash      KEYS[4] due:delivery      KEYS[5] the event's delivery lock
-- ARGV[1] now (unix s)     ARGV[2] when the new lease lapses     ARGV[3] event id
-- ARGV[4] the cap          ARGV[5] TTL of the in-flight set (seconds)
-- ARGV[6] when a deferred event is due again (its back-off, beat's safety net)
-- ARGV[7] its deferral count after this one     ARGV[8] the attempt's token on the event lock
-- ARGV[9] TTL of the waiting set (seconds)
-- Returns 1 (lease taken, the event no longer waiting), 0 (endpoint at its cap: the event is
-- deferred, waiting and unlocked) or -1 (this event is already in flight).
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  return -1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  if redis.call('EXISTS', KEYS[3]) == 1 then  -- never a stub hash for an event gone meanwhile
    redis.call('HSET', KEYS[3], 'due_at', ARGV[6], 'deferrals', ARGV[7])
    redis.call('ZADD', KEYS[4], ARGV[6], ARGV[3])
  end
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[9])
  if redis.call('GET', KEYS[5]) == ARGV[8] then
    redis.call('DEL', KEYS[5])
  end
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
-- Sent now (beat's re-send at its back-off, say): it no longer waits, and its old place in the
-- line must not take a slot its delivery frees (a hand-on to a settled event hands nothing on).
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
