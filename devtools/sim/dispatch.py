"""Timers and callback delivery: one scheduler thread and a small bounded pool, so a burst of
requests never turns into a burst of threads, and nothing is sent from a request thread."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger(__name__)

JOIN_TIMEOUT_SECONDS = 10.0
USER_AGENT = "pixazo-simulator/1"


class Scheduler:
    """Runs small callables at monotonic due times on one thread; callables must not block."""

    def __init__(self, name: str = "sim-scheduler") -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._busy = False  # a popped callable is running: it may still schedule more
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_at(self, due: float, fn: Callable[[], None]) -> None:
        with self._cond:
            if self._closed:
                return
            heapq.heappush(self._heap, (due, next(self._seq), fn))
            self._cond.notify()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        self.call_at(time.monotonic() + max(0.0, delay), fn)

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap) + int(self._busy)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        self._thread.join(JOIN_TIMEOUT_SECONDS)

    def _next_due(self) -> Callable[[], None] | None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    self._busy = True
                    return heapq.heappop(self._heap)[2]
                timeout = self._heap[0][0] - now if self._heap else None
                self._cond.wait(timeout)
            return None

    def _run(self) -> None:
        while (fn := self._next_due()) is not None:
            try:
                fn()
            except Exception:
                log.exception("simulator timer failed")
            finally:
                with self._cond:
                    self._busy = False


@dataclass(frozen=True)
class Delivery:
    """One logical callback: the same body retried until it gets a 2xx or runs out of attempts."""

    url: str
    payload: dict[str, Any]
    max_attempts: int
    backoff_seconds: float
    timeout_seconds: float
    tag: Any = None  # opaque to the sender, handed back in each report


@dataclass(frozen=True)
class AttemptReport:
    delivery: Delivery
    attempt: int
    http_status: int | None
    error: str | None
    will_retry: bool

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


class CallbackSender:
    """POSTs deliveries from a bounded pool; failures are retried via the scheduler with
    exponential backoff, as Pixazo's "network retries" may deliver a callback more than once."""

    def __init__(
        self, scheduler: Scheduler, on_attempt: Callable[[AttemptReport], None], workers: int
    ) -> None:
        self._scheduler = scheduler
        self._on_attempt = on_attempt
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-callback")
        self._closed = False
        self._in_flight = 0  # attempts handed to the pool and not finished
        self._in_flight_lock = threading.Lock()

    def send(self, delivery: Delivery, delay: float = 0.0) -> None:
        self._scheduler.call_later(delay, lambda: self._submit(delivery, 1))

    def in_flight(self) -> int:
        with self._in_flight_lock:
            return self._in_flight

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _count(self, delta: int) -> None:
        with self._in_flight_lock:
            self._in_flight += delta

    def _submit(self, delivery: Delivery, attempt: int) -> None:
        if self._closed:
            return
        self._count(+1)
        try:
            self._pool.submit(self._attempt, delivery, attempt)
        except RuntimeError:  # pool shut down between the check and the submit
            self._count(-1)

    def _attempt(self, delivery: Delivery, attempt: int) -> None:
        try:
            self._attempt_once(delivery, attempt)
        finally:
            self._count(-1)

    def _attempt_once(self, delivery: Delivery, attempt: int) -> None:
        http_status, error = _post(delivery)
        report = AttemptReport(delivery, attempt, http_status, error, will_retry=False)
        if not report.ok and attempt < delivery.max_attempts and not self._closed:
            report = dataclasses.replace(report, will_retry=True)
        self._on_attempt(report)
        if report.will_retry:
            backoff = delivery.backoff_seconds * 2 ** (attempt - 1)
            self._scheduler.call_later(backoff, lambda: self._submit(delivery, attempt + 1))


def _post(delivery: Delivery) -> tuple[int | None, str | None]:
    try:
        response = requests.post(
            delivery.url,
            json=delivery.payload,
            headers={"User-Agent": USER_AGENT},
            timeout=delivery.timeout_seconds,
        )
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"
    response.close()
    return response.status_code, None
