"""Task names and queues, and the one way the rest of the code enqueues work.

Callers send tasks by name so that web code never imports worker modules; every send is best
effort because each kind of work also sits in a due-time set that beat drains, so a message the
broker loses is late, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from celery import current_app as current_celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SUBMIT = "workers.submit.submit_job"
APPLY_CALLBACK = "workers.callbacks.apply_callback"
POLL = "workers.poll.poll_job"
DELIVER = "workers.delivery.deliver_event"
RECONCILE = "workers.reconcile.reconcile"
RECONCILE_BATCH = "workers.reconcile.reconcile_batch"
TRIM_INDEXES = "workers.retention.trim_indexes"

QUEUE_SUBMIT = "submit"
QUEUE_CALLBACKS = "callbacks"
QUEUE_POLL = "poll"
QUEUE_DELIVERY = "delivery"
QUEUE_RECONCILE = "reconcile"
ALL_QUEUES = (QUEUE_SUBMIT, QUEUE_CALLBACKS, QUEUE_POLL, QUEUE_DELIVERY, QUEUE_RECONCILE)

ROUTES = {
    SUBMIT: {"queue": QUEUE_SUBMIT},
    APPLY_CALLBACK: {"queue": QUEUE_CALLBACKS},
    POLL: {"queue": QUEUE_POLL},
    DELIVER: {"queue": QUEUE_DELIVERY},
    RECONCILE: {"queue": QUEUE_RECONCILE},
    RECONCILE_BATCH: {"queue": QUEUE_RECONCILE},
    TRIM_INDEXES: {"queue": QUEUE_RECONCILE},
}
# A reconcile batch still queued after this is dropped unrun: a later tick has fanned out afresh
# for whatever is still due. Its time limits end it before its claim's lease (60 s) lapses.
RECONCILE_BATCH_EXPIRES_SECONDS = 30.0
RECONCILE_BATCH_SOFT_TIME_LIMIT_SECONDS = 40
RECONCILE_BATCH_TIME_LIMIT_SECONDS = 45
SEND_OPTIONS: dict[str, dict[str, float]] = {
    RECONCILE_BATCH: {"expires": RECONCILE_BATCH_EXPIRES_SECONDS},
}


@dataclass
class _Shared:
    producer: Any = None  # kombu Producer, taken from Celery's pool at the first send


_SHARED: ContextVar[_Shared | None] = ContextVar("enqueue_shared_producer", default=None)


@contextmanager
def one_producer() -> Iterator[None]:
    """Sends inside share one producer (and broker connection) instead of taking one from the
    pool per message: a reconcile batch sends hundreds. Nothing is taken if nothing is sent."""
    shared = _Shared()
    token = _SHARED.set(shared)
    try:
        yield
    finally:
        _SHARED.reset(token)
        if shared.producer is not None:
            shared.producer.release()


def _producer() -> dict[str, Any]:
    shared = _SHARED.get()
    if shared is None:
        return {}
    if shared.producer is None:
        shared.producer = current_celery.producer_pool.acquire(block=True)
    return {"producer": shared.producer}


def send(task_name: str, *args: str) -> bool:
    options: dict[str, Any] = {**ROUTES.get(task_name, {}), **SEND_OPTIONS.get(task_name, {})}
    try:
        current_celery.send_task(task_name, args=list(args), **options, **_producer())
    except (KombuError, RedisError, OSError):
        log.warning("could not enqueue %s%r; its due-time entry will fire instead", task_name, args)
        return False
    return True


def submit(job_id: str) -> bool:
    return send(SUBMIT, job_id)


def apply_callback(inbox_id: str) -> bool:
    return send(APPLY_CALLBACK, inbox_id)


def poll(job_id: str) -> bool:
    return send(POLL, job_id)


def deliver(event_id: str) -> bool:
    return send(DELIVER, event_id)


def reconcile_batch(step: str) -> bool:
    """One batch of one due set (orchestrator.reconcile.steps.run_batch)."""
    return send(RECONCILE_BATCH, step)
