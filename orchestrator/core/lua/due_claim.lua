-- Claim due members of one due-time set for one reconcile batch, in a single step.
-- KEYS[1] the due-time set (sorted set, score: when each member is due)
-- ARGV[1] now: members scored at or before it are due
-- ARGV[2] the most members to claim
-- ARGV[3] the lease: claimed members are rescored to it, so that no other batch sees them due
--         until it lapses; a crashed batch's members come due again by themselves
-- Returns the claimed members, earliest due first.
local claimed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(claimed) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], member)
end
return claimed
