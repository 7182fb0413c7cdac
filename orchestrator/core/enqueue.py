"""Task names and queues, and the one way the rest of the code enqueues work.

Callers send tasks by name so that web code never imports worker modules; every send is best
effort because each kind of work also sits in a due-time set that beat drains, so a message the
broker loses is late, never lost.
"""

from __future__ import annotations

import logging
import os
import threading
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


# Producers kept when Celery's ``broker_pool_limit`` says nothing usable (0 or None).
DEFAULT_KEPT_PRODUCERS = 10
_MAKE = object()  # _KeptProducers._take: room for one more


class _KeptProducers:
    """Producers kept from one send to the next, each on a broker connection of its own.

    Celery's producer pool, taken per send, revives the producer on a pooled connection and
    lets both go again each time, and kombu re-checks the queue's declaration through its
    retry wrapper on every publish: together about a quarter of a send's CPU. Here a send takes
    a producer that is already live. There are at most as many as sends ran at once, and at
    most ``broker_pool_limit`` (the connections Celery's pool would have opened); a send beyond
    that takes Celery's pool as before. One whose send raised is closed, not kept; a new Celery
    app (tests) or a fork (a child must not write on its parent's sockets) starts from none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self._app: Any = None
        self._live = 0  # producers made for ``_app`` and not closed

    @contextmanager
    def taken(self) -> Iterator[Any]:
        """A kept producer, or None when as many as the limit are busy (then Celery's pool)."""
        app = current_celery._get_current_object()
        producer = self._take(app)
        if producer is None:
            yield None
            return
        try:
            yield producer
        except BaseException:
            _close(producer)
            self._lost(app)
            raise
        self._give(app, producer)

    def _take(self, app: Any) -> Any:
        stale: list[Any] = []
        with self._lock:
            if self._app is not app:
                stale, self._free, self._app, self._live = self._free, [], app, 0
            if self._free:
                producer = self._free.pop()
            elif self._live < _limit(app):
                self._live += 1
                producer = _MAKE
            else:
                producer = None
        for old in stale:
            _close(old)
        if producer is _MAKE:
            try:
                return app.amqp.Producer(app.connection_for_write())
            except BaseException:
                self._lost(app)
                raise
        return producer

    def _give(self, app: Any, producer: Any) -> None:
        with self._lock:
            if self._app is app:
                self._free.append(producer)
                return
        _close(producer)  # made for an app that is no longer the current one

    def _lost(self, app: Any) -> None:
        with self._lock:
            if self._app is app:
                self._live -= 1

    def forget(self) -> None:
        """Start from none (and after a fork: the parent's producers are left alone, not
        closed, and the parent's lock may have been held at the fork)."""
        self._lock = threading.Lock()
        self._free = []
        self._app = None
        self._live = 0


def _limit(app: Any) -> int:
    limit = app.conf.broker_pool_limit
    return limit if isinstance(limit, int) and limit > 0 else DEFAULT_KEPT_PRODUCERS


def _close(producer: Any) -> None:
    try:
        producer.connection.release()
    except Exception:  # closing a broken connection: nothing more to do with it
        log.debug("closing a kept producer's connection failed", exc_info=True)


_KEPT = _KeptProducers()
os.register_at_fork(after_in_child=_KEPT.forget)


@contextmanager
def _producer() -> Iterator[Any]:
    """The producer of the enclosing :func:`one_producer`, else a kept one (or None: Celery's
    pool, see :class:`_KeptProducers`)."""
    shared = _SHARED.get()
    if shared is None:
        with _KEPT.taken() as producer:
            yield producer
        return
    if shared.producer is None:
        shared.producer = current_celery.producer_pool.acquire(block=True)
    yield shared.producer


def _declared(producer: Any, queue: str | None) -> dict[str, Any]:
    """``declare=[]`` once ``queue`` is declared on the producer's connection (kombu forgets
    what it declared when it reconnects): kombu would only find it so again, through a retry
    wrapper and a copy of the queue bound to the channel, on every publish."""
    if queue is None:
        return {}
    entity = current_celery.amqp.queues[queue]
    return {"declare": []} if hash(entity) in producer.connection.declared_entities else {}


def send(task_name: str, *args: str) -> bool:
    options: dict[str, Any] = {**ROUTES.get(task_name, {}), **SEND_OPTIONS.get(task_name, {})}
    try:
        with _producer() as producer:
            if producer is not None:
                options.update(producer=producer, **_declared(producer, options.get("queue")))
            current_celery.send_task(task_name, args=list(args), **options)
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
