-- Make a deferred event due now, for the attempt that hands its endpoint's freed slot on
-- (webhooks/outbound/endpoints.py): only an event still pending and not yet due is moved, so an
-- event settled meanwhile (by beat's re-send) is never written to or put back in the due set.
-- KEYS[1] the event hash   KEYS[2] due:delivery
-- ARGV[1] now (unix s)   ARGV[2] the event id
-- Returns 1 when the event was made due now, 0 otherwise.
local state = redis.call('HGET', KEYS[1], 'state')
local due = tonumber(redis.call('HGET', KEYS[1], 'due_at') or '')
if state ~= 'pending' or due == nil or due <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'due_at', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
