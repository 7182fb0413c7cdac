"""A consumer that trickles its answer cannot hold more than its cap, for minutes, through beat's
re-sends, while another client's events keep arriving within seconds. Real processes.

The trickler answers every request by sending one byte every half second, forever (inside the
headers, so they never end). Per-read timeouts never fire on it; only each attempt's wall-clock
deadline ends an attempt. It counts its open connections: at no moment may more than
``ENDPOINT_MAX_IN_FLIGHT`` be open, across the delivery worker's threads and beat's re-sends
of the same events (beat hands a claimed event out again every ``CLAIM_SECONDS``).
"""

from __future__ import annotations

import select
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from devtools.devstack import Stack
from orchestrator.core import enqueue
from orchestrator.reconcile import steps
from tests.conftest import System, start_system, wait_for
from webhooks.outbound import delivery

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

MODEL = "pixverse-v6-text-to-video"
DEADLINE_SECONDS = 4  # the system's ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS, shortened
TRICKLE_EVERY_SECONDS = 0.5
TRICKLER_EVENTS = 12  # three times the cap: some always wait, deferred, for a lease
HOLD_SECONDS = 160  # beyond two of beat's claim periods, so its re-sends happen
HEALTHY_EVERY_SECONDS = 5.0
HEALTHY_LATENCY_SECONDS = 5.0  # job completed -> event received at the other client's endpoint
DELIVERY_RECEIVED = f"Task {enqueue.DELIVER}["  # Celery's log line for a task it runs
# Long enough that no trickler event runs out of attempts while the test holds.
SCHEDULE = ",".join(["0"] + ["1"] * 59)


class Trickler:
    """Loopback server: reads a request, then sends one byte every half second until the
    client closes. Counts connections open at once (closes are seen at once, via select)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/trickle"
        self.open = self.peak = self.total = 0
        self._count = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._count:
                self.open += 1
                self.total += 1
                self.peak = max(self.peak, self.open)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)  # the request (one segment on loopback is enough for us)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
            while not self._closed.is_set():
                readable, _, _ = select.select([conn], [], [], TRICKLE_EVERY_SECONDS)
                if readable and not conn.recv(65536):
                    return  # the client closed
                conn.sendall(b"a")
        except OSError:
            return
        finally:
            conn.close()
            with self._count:
                self.open -= 1

    def close(self) -> None:
        self._closed.set()
        self.sock.close()


@pytest.fixture(scope="module")
def trickle_system() -> Iterator[System]:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        env = {
            "ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
            "ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE": SCHEDULE,
        }
        _, system = start_system(url, env, stack=stack, delivery_threads=8)
        yield system
    finally:
        stack.stop_all()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    yield server
    server.close()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _create(system: System, key: str, prompt: str) -> str:
    answer = system.api(key).post(
        f"{system.web}/v1/jobs", json={"model": MODEL, "input": {"prompt": prompt}}, timeout=10
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


@pytest.mark.timeout(HOLD_SECONDS + 240)
def test_a_trickling_endpoint_holds_at_most_its_cap_while_others_arrive_in_seconds(
    trickle_system, trickler
):
    system = trickle_system
    assert HOLD_SECONDS > 2 * steps.CLAIM_SECONDS
    _, slow_key = system.new_client("trickler", callback_url=trickler.url)
    _, healthy_key = system.new_client("healthy")
    for i in range(TRICKLER_EVENTS):
        _create(system, slow_key, f"slow {i}")
    healthy_jobs: list[str] = []
    samples: list[int] = []
    started = time.monotonic()
    next_healthy = started
    while time.monotonic() - started < HOLD_SECONDS:
        if time.monotonic() >= next_healthy:
            healthy_jobs.append(_create(system, healthy_key, f"healthy {len(healthy_jobs)}"))
            next_healthy += HEALTHY_EVERY_SECONDS
        samples.append(trickler.open)
        time.sleep(0.1)

    def all_healthy() -> list[dict]:
        got = [e for e in system.consumer_events("healthy") if e["status"] == 200]
        return got if {e["job_id"] for e in got} >= set(healthy_jobs) else []

    events = wait_for(all_healthy, timeout=30, every=0.5, what="every healthy event")
    latencies = [_ts(e["received_at"]) - _ts(e["payload"]["created_at"]) for e in events]
    worker_log = "".join(proc.log() for proc in system.orch.workers)
    assert system.orch.delivery is not None
    print(
        f"\ntrickler ({TRICKLER_EVENTS} events, {DEADLINE_SECONDS}s deadline) held "
        f"{HOLD_SECONDS}s: {trickler.total} connections, at most {trickler.peak} open at once "
        f"(sampled median {statistics.median(samples)}); other client: {len(events)} events, "
        f"latency median {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s"
    )
    assert trickler.peak <= delivery.ENDPOINT_MAX_IN_FLIGHT
    # Attempts kept coming all along (each ended by its deadline), not stuck in a few sockets.
    assert trickler.total >= HOLD_SECONDS / (DEADLINE_SECONDS + 2)
    assert max(latencies) < HEALTHY_LATENCY_SECONDS
    # No delivery ever ran on the worker's prefork slots: they are the submits' and callbacks'.
    assert DELIVERY_RECEIVED not in worker_log
    assert DELIVERY_RECEIVED in system.orch.delivery.log()
