"""A worker that has stopped consuming exits, so its supervisor starts a fresh one.

kombu's Redis transport can lose its consumer after a broker restart without saying so: the
process lives on, idle, while its queues fill (celery/celery#8030 and its relatives). Every task
is in a due-time set and idempotent, so the cure is cheap: notice "idle for a while, nothing
running, yet messages wait in my queues" and exit; a restarted worker picks the work up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from celery.signals import task_received, worker_ready
from celery.worker import state as worker_state

from orchestrator.celery_app import BROKER_URL_CONF
from orchestrator.core import broker

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 5.0
STALLED_EXIT_CODE = 4
CONF_KEY = "worker_stall_seconds"


class Watchdog:
    """Decides, from what the main process sees, whether the consumer has gone quiet."""

    def __init__(
        self,
        stall_seconds: float,
        waiting: Callable[[], int],
        busy: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stall = stall_seconds
        self._waiting = waiting
        self._busy = busy
        self._clock = clock
        self._last_seen = clock()

    def saw_activity(self) -> None:
        self._last_seen = self._clock()

    def stalled(self) -> int:
        """Messages waiting while this idle worker has received nothing for too long, else 0."""
        if self._clock() - self._last_seen < self._stall:
            return 0
        if self._busy():
            self.saw_activity()
            return 0
        try:
            waiting = self._waiting()
        except broker.BrokerUnavailable:
            return 0  # the broker itself is away: kombu is reconnecting, not stalled
        if not waiting:
            self.saw_activity()
        return waiting


def _queue_lengths(url: str, queues: Iterable[str]) -> Callable[[], int]:
    """Messages waiting in ``queues``, asked through kombu: the same on Redis and RabbitMQ."""
    names = list(queues)
    return lambda: sum(broker.queue_depths(url, names).values())


def _busy() -> bool:
    return bool(worker_state.active_requests or worker_state.reserved_requests)


_watchdog: Watchdog | None = None


@task_received.connect
def _on_received(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.saw_activity()


@worker_ready.connect
def _start(sender: Any, **_: Any) -> None:
    global _watchdog
    app = sender.app
    stall = float(app.conf.get(CONF_KEY) or 0)
    if stall <= 0:
        return
    queues = list(app.amqp.queues.consume_from)
    url = app.conf.get(BROKER_URL_CONF) or app.conf.broker_url
    _watchdog = Watchdog(stall, _queue_lengths(url, queues), _busy)
    log.info("watchdog: active (exits after %gs idle with messages waiting)", stall)
    threading.Thread(target=_watch, args=(_watchdog,), name="watchdog", daemon=True).start()


def _watch(watchdog: Watchdog) -> None:
    while True:
        time.sleep(CHECK_EVERY_SECONDS)
        waiting = watchdog.stalled()
        if waiting:
            log.critical(
                "worker stopped consuming: %d message(s) wait in its queues; exiting so that "
                "its supervisor starts a fresh one",
                waiting,
            )
            logging.shutdown()
            os._exit(STALLED_EXIT_CODE)
