"""The worker watchdog: exit only when idle, nothing running, and messages wait."""

from __future__ import annotations

from orchestrator.core import broker
from workers.watchdog import Watchdog, _queue_lengths


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
        raise broker.BrokerUnavailable("broker unreachable (ConnectionError)")

    dog, clock = make(waiting=down)
    clock.now += 100
    assert dog.stalled() == 0


def test_waiting_messages_are_counted_through_kombu_on_any_broker(monkeypatch):
    asked = []

    def depths(url, queues):
        asked.append((url, list(queues)))
        return {"submit": 2, "poll": 5}

    monkeypatch.setattr(broker, "queue_depths", depths)
    waiting = _queue_lengths("amqp://guest:guest@rabbit:5672//", ["submit", "poll"])
    assert waiting() == 7
    assert asked == [("amqp://guest:guest@rabbit:5672//", ["submit", "poll"])]
