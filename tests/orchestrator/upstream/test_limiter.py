"""The shared submit limiter (fakeredis): token-bucket rate, concurrency leases, lease expiry."""

from __future__ import annotations

import fakeredis

from orchestrator.upstream.limiter import DEFAULT_LEASE_SECONDS, SubmitLimiter

T0 = 1_000_000.0


def test_concurrency_cap_is_shared_by_every_limiter_on_one_redis(fake_redis) -> None:
    """Two workers (two limiter objects) share one cap: it is in Redis, not in a process."""
    first = SubmitLimiter(fake_redis, rate_per_second=1000, concurrency=3)
    second = SubmitLimiter(fake_redis, rate_per_second=1000, concurrency=3)
    leases = [first.acquire(T0)[0], second.acquire(T0)[0], first.acquire(T0)[0]]
    assert all(leases)
    lease, wait = second.acquire(T0)
    assert lease is None and wait > 0
    assert first.in_flight(T0) == 3
    first.release(leases[0])
    assert second.acquire(T0)[0] is not None


def test_rate_is_a_token_bucket(fake_redis) -> None:
    limiter = SubmitLimiter(fake_redis, rate_per_second=5, concurrency=1000)
    granted = [limiter.acquire(T0)[0] for _ in range(8)]
    assert sum(1 for g in granted if g) == 5  # a burst of one second's worth
    lease, wait = limiter.acquire(T0)
    assert lease is None and 0 < wait <= 0.2 + 1e-9
    assert limiter.acquire(T0 + 0.25)[0] is not None  # one token refilled
    assert limiter.acquire(T0 + 0.25)[0] is None


def test_over_ten_seconds_no_more_than_rate_times_time_plus_burst(fake_redis) -> None:
    limiter = SubmitLimiter(fake_redis, rate_per_second=10, concurrency=1000)
    granted = 0
    now = T0
    while now < T0 + 10:
        lease, _ = limiter.acquire(now)
        granted += lease is not None
        now += 0.01
    assert 100 <= granted <= 110


def test_a_killed_workers_lease_expires_by_itself(fake_redis) -> None:
    limiter = SubmitLimiter(fake_redis, rate_per_second=1000, concurrency=1)
    assert limiter.acquire(T0)[0] is not None  # never released: the worker died
    assert limiter.acquire(T0 + 1)[0] is None
    assert limiter.acquire(T0 + DEFAULT_LEASE_SECONDS + 1)[0] is not None


def test_separate_redis_means_separate_limits() -> None:
    a = SubmitLimiter(fakeredis.FakeRedis(decode_responses=True), 1000, 1)
    b = SubmitLimiter(fakeredis.FakeRedis(decode_responses=True), 1000, 1)
    assert a.acquire(T0)[0] and b.acquire(T0)[0]
