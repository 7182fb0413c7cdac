"""A submit limiter shared by every worker: a token bucket for the rate, a lease set for the
number of submits in flight. Both live in Redis, so adding workers never adds upstream pressure.
"""

from __future__ import annotations

import secrets

import redis

from orchestrator.core import keys, lua

# A lease outlives any submit (its timeouts plus this margin); a killed worker's lease
# expires by itself, so its slot comes back without anyone releasing it.
LEASE_MARGIN_SECONDS = 15.0
DEFAULT_LEASE_SECONDS = 120.0
_BUSY_WAIT_SECONDS = 0.5


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
        self._acquire = r.register_script(lua.source("limiter_acquire"))

    def acquire(self, now: float) -> tuple[str | None, float]:
        """(lease, 0) when a submit may go now; (None, seconds to wait) otherwise."""
        lease = secrets.token_hex(8)
        wait = float(
            self._acquire(
                keys=[keys.LIMITER_BUCKET, keys.LIMITER_LEASES],
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

    def release(self, lease: str, pipe: redis.client.Pipeline | None = None) -> None:
        """With ``pipe``, only queued there (sent with the caller's other writes)."""
        (self._redis if pipe is None else pipe).zrem(keys.LIMITER_LEASES, lease)

    def in_flight(self, now: float) -> int:
        return int(self._redis.zcount(keys.LIMITER_LEASES, now, "+inf"))
