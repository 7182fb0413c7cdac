"""The worker watchdog: exit only when idle, nothing running, and messages wait."""

from __future__ import annotations

import redis

from workers.watchdog import Watchdog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(waiting=lambda: 3, busy=lambda: False):
    clock = Clock()
    return Watchdog(30, waiting, busy, clock), clock


def test_quiet_but_recent_is_fine():
    dog, clock = make()
    clock.now += 29
    assert dog.stalled() == 0


def test_idle_with_waiting_messages_is_stalled():
    dog, clock = make()
    clock.now += 31
    assert dog.stalled() == 3


def test_activity_resets_the_clock():
    dog, clock = make()
    clock.now += 25
    dog.saw_activity()
    clock.now += 25
    assert dog.stalled() == 0


def test_a_busy_worker_is_not_stalled_and_its_clock_restarts():
    busy = [True]
    dog, clock = make(busy=lambda: busy[0])
    clock.now += 100
    assert dog.stalled() == 0
    busy[0] = False
    clock.now += 10
    assert dog.stalled() == 0  # the busy check counted as activity


def test_empty_queues_mean_nothing_to_do_not_a_stall():
    dog, clock = make(waiting=lambda: 0)
    clock.now += 100
    assert dog.stalled() == 0


def test_an_unreachable_broker_is_reconnecting_not_stalled():
    def down() -> int:
        raise redis.ConnectionError("refused")

    dog, clock = make(waiting=down)
    clock.now += 100
    assert dog.stalled() == 0
