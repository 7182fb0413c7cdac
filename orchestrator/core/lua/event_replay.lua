--@include append
-- Put a settled event back in the delivery queue, only while its job is kept (so that every
-- key it touches still expires with the job). Nothing is written when the job is gone.
-- KEYS[1] event hash       KEYS[2] its attempts list     KEYS[3] the job hash
-- KEYS[4] the job's timeline                              KEYS[5] due:delivery
-- KEYS[6] deliveries:dead  KEYS[7] the client's dead-letter set
-- ARGV[1] event id         ARGV[2] now (unix s)
-- ARGV[3] TTL for the event and its attempts (seconds)    ARGV[4] the timeline entry (JSON)
-- Returns 1 (replayed) or 0 (no such event, or its job has expired).
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'pending', 'attempts', '0', 'deferrals', '0')
redis.call('HDEL', KEYS[1], 'due_at', 'next_attempt_at')
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
append(KEYS[4], KEYS[3], ARGV[4])
return 1
