"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers' latency.

A closed loop (send, wait, send) slows down with the system under test and hides its queueing;
here one pacing thread hands each request to a pool at its planned moment, so a slow answer
delays nothing but itself, and how late the sends were (the generator's own limit) is reported.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

SENDER_THREADS = 64
REQUEST_TIMEOUT_SECONDS = 10.0


@dataclass
class Offered:
    """What one run offered and what came back."""

    planned: int = 0
    answered: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    errors: Counter[str] = field(default_factory=Counter)  # exception class -> count
    accepted_ids: list[str] = field(default_factory=list)
    max_send_delay: float = 0.0  # seconds a send left after its planned moment, at worst
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int | str, job_id: str | None, delay: float) -> None:
        """``status``: the HTTP status, or the name of the exception the request raised."""
        with self.lock:
            self.max_send_delay = max(self.max_send_delay, delay)
            if isinstance(status, str):
                self.errors[status] += 1
                return
            self.answered[status] = self.answered.get(status, 0) + 1
            if job_id:
                self.accepted_ids.append(job_id)


Send = Callable[[requests.Session], tuple[int, str | None]]


def offer(rate: float, seconds: float, send: Send, on_tick: Callable[[float], None]) -> Offered:
    """Call ``send`` ``rate`` times a second for ``seconds`` on a pool of sessions; ``on_tick``
    gets the elapsed seconds about once a second (samples taken during the run)."""
    result = Offered(planned=int(rate * seconds))
    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session  # type: ignore[no-any-return]

    def one(planned_at: float) -> None:
        delay = time.monotonic() - planned_at
        try:
            status, job_id = send(session())
        except requests.RequestException as exc:
            result.record(type(exc).__name__, None, delay)
            return
        result.record(status, job_id, delay)

    start = time.monotonic()
    next_tick = 1.0
    with ThreadPoolExecutor(SENDER_THREADS, thread_name_prefix="offer") as pool:
        for i in range(result.planned):
            planned_at = start + i / rate
            pause = planned_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            pool.submit(one, planned_at)
            if planned_at - start >= next_tick:
                on_tick(planned_at - start)
                next_tick += 1.0
    return result
