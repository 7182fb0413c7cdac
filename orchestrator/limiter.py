"""A submit limiter shared by every worker: a token bucket for the rate, a lease set for the
number of submits in flight. Both live in Redis, so adding workers never adds upstream pressure.
"""

from __future__ import annotations

import secrets

import redis

BUCKET_KEY = "limiter:submit:bucket"
LEASES_KEY = "limiter:submit:leases"
# A lease outlives any submit (its timeouts plus this margin); a killed worker's lease
# expires by itself, so its slot comes back without anyone releasing it.
LEASE_MARGIN_SECONDS = 15.0
DEFAULT_LEASE_SECONDS = 120.0
_BUSY_WAIT_SECONDS = 0.5

_ACQUIRE_LUA = """
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
"""


class SubmitLimiter:
    def __init__(
        self,
        r: redis.Redis,
        rate_per_second: float,
        concurrency: int,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self._redis = r
        self._lease = lease_seconds
        self._rate = rate_per_second
        self._burst = max(1.0, rate_per_second)
        self._cap = concurrency
        self._acquire = r.register_script(_ACQUIRE_LUA)

    def acquire(self, now: float) -> tuple[str | None, float]:
        """(lease, 0) when a submit may go now; (None, seconds to wait) otherwise."""
        lease = secrets.token_hex(8)
        wait = float(
            self._acquire(
                keys=[BUCKET_KEY, LEASES_KEY],
                args=[
                    self._rate,
                    self._burst,
                    self._cap,
                    now,
                    self._lease,
                    lease,
                    _BUSY_WAIT_SECONDS,
                ],
            )
        )
        return (lease, 0.0) if wait <= 0 else (None, wait)

    def release(self, lease: str) -> None:
        self._redis.zrem(LEASES_KEY, lease)

    def in_flight(self, now: float) -> int:
        return int(self._redis.zcount(LEASES_KEY, now, "+inf"))
