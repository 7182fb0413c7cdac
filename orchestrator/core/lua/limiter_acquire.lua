-- The submit limiter's acquire (limiter.py): a token bucket for the rate, a lease set for the
-- number of submits in flight; expired leases (a killed worker's) are dropped first.
-- KEYS[1] the bucket hash (tokens, ts)   KEYS[2] the leases sorted set (score: lapses at)
-- ARGV[1] rate (tokens/s)   ARGV[2] burst   ARGV[3] concurrency cap   ARGV[4] now (unix s)
-- ARGV[5] lease seconds     ARGV[6] the new lease's id   ARGV[7] the wait when the cap is full
-- Returns '0' when a lease was taken, else the seconds to wait (as a string).
local rate, burst, cap, now, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= cap then return ARGV[7] end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  return tostring((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
redis.call('ZADD', KEYS[2], now + lease, ARGV[6])
return '0'
