-- One API request's authentication and rate-limit count, in one round trip: the caller names
-- the client it expects the key to belong to (learnt from an earlier request, or just read),
-- and the script counts the request and reads the client only if the stored key still names
-- that client, so a removed key is refused at once and counts nothing.
-- KEYS[1] apikey:<hash of the key>   KEYS[2] client:<ARGV[1]>
-- KEYS[3] ARGV[1]'s request counter for this window
-- ARGV[1] the client id expected   ARGV[2] the counter's TTL (seconds)
-- Returns {0, owner or ''} when KEYS[1] does not name ARGV[1] (nothing counted), else
-- {count, {field, value, ...}} (the client hash, empty if the client is gone).
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then return {0, owner or ''} end
local count = redis.call('INCR', KEYS[3])
if count == 1 then redis.call('EXPIRE', KEYS[3], ARGV[2]) end
return {count, redis.call('HGETALL', KEYS[2])}
