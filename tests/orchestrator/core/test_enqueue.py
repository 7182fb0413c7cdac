"""enqueue.send: routes each task to its queue, with the options its kind needs."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.core import enqueue


class _Producer:
    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


class _Pool:
    def __init__(self) -> None:
        self.taken: list[_Producer] = []

    def acquire(self, block: bool) -> _Producer:
        self.taken.append(_Producer())
        return self.taken[-1]


class _Celery:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.producer_pool = _Pool()

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def test_a_reconcile_batch_goes_to_the_reconcile_queue_and_expires(monkeypatch) -> None:
    celery = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", celery)
    assert enqueue.reconcile_batch("polls")
    [(name, options)] = celery.sent
    assert name == enqueue.RECONCILE_BATCH
    assert options == {
        "args": ["polls"],
        "queue": enqueue.QUEUE_RECONCILE,
        "expires": enqueue.RECONCILE_BATCH_EXPIRES_SECONDS,
    }


@pytest.mark.parametrize(
    ("send", "task", "queue"),
    [
        (enqueue.poll, enqueue.POLL, enqueue.QUEUE_POLL),
        (enqueue.deliver, enqueue.DELIVER, enqueue.QUEUE_DELIVERY),
    ],
)
def test_other_tasks_carry_only_their_queue(monkeypatch, send, task, queue) -> None:
    celery = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", celery)
    assert send("job_a")
    assert celery.sent == [(task, {"args": ["job_a"], "queue": queue})]


def test_sends_inside_one_producer_share_one_producer_and_release_it(monkeypatch) -> None:
    celery = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", celery)
    with enqueue.one_producer():
        assert enqueue.poll("job_a")
        assert enqueue.deliver("evt_a")
    [producer] = celery.producer_pool.taken
    assert [options["producer"] for _, options in celery.sent] == [producer, producer]
    assert producer.released == 1
    assert enqueue.poll("job_b")  # outside: Celery's own per-send producer
    assert "producer" not in celery.sent[-1][1]


def test_one_producer_takes_nothing_when_nothing_is_sent(monkeypatch) -> None:
    celery = _Celery()
    monkeypatch.setattr(enqueue, "current_celery", celery)
    with enqueue.one_producer():
        pass
    assert celery.producer_pool.taken == []
