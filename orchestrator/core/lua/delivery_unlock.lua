-- Release an event's delivery lock, only if the caller still holds it.
-- KEYS[1] the event's delivery lock
-- ARGV[1] the token of the delivery that took it (a lapsed lock now held by another stays)
-- Returns 1 (released) or 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
