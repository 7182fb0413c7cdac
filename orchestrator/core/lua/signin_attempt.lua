-- One console sign-in attempt's throttle (ops/operators.py), counted before the password is
-- verified: the attempt counts as a failure until a success clears KEYS[1].
-- KEYS[1] the name + address hash (count, until ms)   KEYS[2] the address's attempts this minute
-- KEYS[3] the host's password verifies this second
-- ARGV[1] now (ms)   ARGV[2] free failures   ARGV[3] first delay (ms)   ARGV[4] max delay (ms)
-- ARGV[5] window (s)   ARGV[6] attempts per address and minute   ARGV[7] verifies per second
-- Returns {0, 0} to go ahead, or {reason, wait ms}: 1 the name + address must wait,
-- 2 the address, 3 the host.
local now = tonumber(ARGV[1])
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if wait_until > now then return {1, wait_until - now} end
local tries = redis.call('INCR', KEYS[2])
if tries == 1 then redis.call('EXPIRE', KEYS[2], 2 * 60) end
if tries > tonumber(ARGV[6]) then return {2, 60000 - now % 60000} end
local verifies = redis.call('INCR', KEYS[3])
if verifies == 1 then redis.call('EXPIRE', KEYS[3], 2) end
if verifies > tonumber(ARGV[7]) then return {3, 1000 - now % 1000} end
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local delay = 0
if count > tonumber(ARGV[2]) then
  delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ (count - tonumber(ARGV[2]) - 1))
end
redis.call('HSET', KEYS[1], 'until', string.format('%d', now + delay))
redis.call('EXPIRE', KEYS[1], math.max(tonumber(ARGV[5]), math.ceil(delay / 1000)))
return {0, 0}
