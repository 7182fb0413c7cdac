"""The beat scheduler rides out a Redis outage instead of exiting (stock RedBeat exits)."""

from __future__ import annotations

import pytest
from redbeat import RedBeatScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.lock import LockNotOwnedError

from orchestrator.reconcile.beat import OUTAGE_RETRY_SECONDS, ResilientRedBeatScheduler


def _scheduler() -> ResilientRedBeatScheduler:
    return object.__new__(ResilientRedBeatScheduler)  # no app or Redis needed for tick()


def test_a_tick_that_cannot_reach_redis_waits_and_retries(monkeypatch) -> None:
    def down(self, *args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(RedBeatScheduler, "tick", down)
    assert _scheduler().tick() == OUTAGE_RETRY_SECONDS


def test_a_normal_tick_is_redbeats(monkeypatch) -> None:
    monkeypatch.setattr(RedBeatScheduler, "tick", lambda self, *a, **k: 0.25)
    assert _scheduler().tick() == 0.25


def test_losing_the_lock_to_another_beat_still_ends_this_one(monkeypatch) -> None:
    def stolen(self, *args, **kwargs):
        raise LockNotOwnedError("Cannot extend a lock that's no longer owned")

    monkeypatch.setattr(RedBeatScheduler, "tick", stolen)
    with pytest.raises(LockNotOwnedError):
        _scheduler().tick()
