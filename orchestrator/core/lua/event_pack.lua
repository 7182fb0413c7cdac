-- Rewrite a settled event's hash with its snapshot packed and cut into short fields, so that
-- the hash is stored as a listpack (every value within hash-max-listpack-value, 64 bytes by
-- default) instead of a hashtable: Redis never converts a hashtable back, hence the rewrite.
-- The snapshot is written once, when the event is made, so the chunks stand for what is read.
-- KEYS[1] the event hash
-- ARGV[1] prefix of the chunk fields   ARGV[2..] the packed snapshot's chunks, in order
-- Returns 1 (rewritten) or 0 (no plain snapshot: gone, or packed already).
if redis.call('HEXISTS', KEYS[1], 'snapshot') == 0 then
  return 0
end
local flat = redis.call('HGETALL', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
local fields = {}
for i = 1, #flat, 2 do
  if flat[i] ~= 'snapshot' then
    fields[#fields + 1] = flat[i]
    fields[#fields + 1] = flat[i + 1]
  end
end
for i = 2, #ARGV do
  fields[#fields + 1] = ARGV[1] .. (i - 2)
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fields))
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
