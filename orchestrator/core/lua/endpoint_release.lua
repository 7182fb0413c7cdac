-- Give back one attempt's endpoint lease (only that lease: a later one of the event stays).
-- KEYS[1] the endpoint's in-flight set
-- ARGV[1] event id         ARGV[2] when this attempt's lease lapses
-- Returns 1 (removed) or 0.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
