"""enqueue.send: routes each task to its queue, with the options its kind needs."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.core import enqueue


class _Celery:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

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
