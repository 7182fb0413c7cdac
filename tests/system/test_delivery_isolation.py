"""Slow and dead consumers never hold up the others: 1,000 jobs, three consumers, real processes.

Deliveries run as in the Procfile: their own Celery worker on a thread pool, with at most
``ENDPOINT_MAX_IN_FLIGHT`` requests in flight per endpoint. One consumer answers in 10 s, one
is a black hole (connections are never answered: every attempt costs the full 15 s timeout),
one is healthy. The healthy consumer must receive all of its events while the slow one has
received only a small fraction of its own: in a shared FIFO pool it would have had to wait
behind most of them.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from devtools.devstack import Stack
from orchestrator.core import keys
from orchestrator.jobs.state import event_key
from tests.conftest import System, start_system, wait_for
from tests.helpers import job_event_ids
from webhooks.outbound import delivery

pytestmark = pytest.mark.integration

JOBS = 1000
SLOW_SECONDS = 10
DELIVERY_THREADS = 32
MODEL = "pixverse-v6-text-to-video"


@pytest.fixture(scope="module")
def isolated() -> Iterator[System]:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        _, system = start_system(url, stack=stack, delivery_threads=DELIVERY_THREADS)
        yield system
    finally:
        stack.stop_all()


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that takes connections into its backlog and never answers them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4096)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hooks/dead"
    finally:
        sock.close()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_healthy_consumer_is_not_held_up_by_a_slow_and_a_dead_one(isolated, black_hole):
    system = isolated
    _, healthy_key = system.new_client("healthy")
    _, slow_key = system.new_client("slow")
    _, dead_key = system.new_client("dead", callback_url=black_hole)
    requests.post(
        f"{system.consumer}/_consumer/config",
        json={"name": "slow", "delay_seconds": SLOW_SECONDS},
        timeout=5,
    )
    api_keys = [healthy_key, slow_key, dead_key]

    def create(i: int) -> tuple[int, str]:
        key = api_keys[i % 3]
        answer = system.api(key).post(
            f"{system.web}/v1/jobs",
            json={"model": MODEL, "input": {"prompt": f"job {i}"}},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        return i % 3, answer.json()["id"]

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        created = list(pool.map(create, range(JOBS)))
    created_s = time.monotonic() - started
    per_client = [sum(1 for c, _ in created if c == n) for n in range(3)]
    healthy_jobs = {job for c, job in created if c == 0}

    def healthy_done() -> list[dict]:
        got = system.consumer_events("healthy")
        return got if len({e["job_id"] for e in got if e["status"] == 200}) >= per_client[0] else []

    events = wait_for(healthy_done, timeout=180, every=0.5, what="every healthy event")
    done_s = time.monotonic() - started
    slow_seen = system.consumer_events("slow")
    dead_attempts = sum(
        int(system.redis.hget(keys.event(e), "attempts") or 0)
        for _, job in created[2::3]
        for e in [job_event_ids(system.redis, job).get(event_key("job.completed", 1))]
        if e
    )
    completed = system.redis.zcard(keys.status_index("completed"))

    latencies = []
    for e in events:
        created_at = _ts(e["payload"]["created_at"])
        latencies.append(_ts(e["received_at"]) - created_at)
    print(
        f"\n{JOBS} jobs created in {created_s:.1f}s; healthy consumer had all {per_client[0]} "
        f"events {done_s:.1f}s after the first job. At that moment: slow consumer received "
        f"{len(slow_seen)}/{per_client[1]} (answers in {SLOW_SECONDS}s), dead endpoint "
        f"{dead_attempts} attempts for {per_client[2]} events (15 s timeout each); "
        f"{completed}/{JOBS} jobs completed.\nhealthy event latency (event made -> received): "
        f"median {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s. "
        f"A shared FIFO pool of {DELIVERY_THREADS} would owe ~"
        f"{per_client[1] * SLOW_SECONDS / DELIVERY_THREADS:.0f}s to the slow and ~"
        f"{per_client[2] * 15 / DELIVERY_THREADS:.0f}s to the dead consumer's events."
    )
    ok = [e for e in events if e["status"] == 200]
    assert {e["job_id"] for e in ok} == healthy_jobs
    assert len({e["webhook_id"] for e in ok}) == per_client[0]
    assert all(e["verified"] for e in events)
    # The slow consumer holds at most its cap of workers: it has seen a small fraction of its
    # events, each in flight for SLOW_SECONDS, so the healthy ones did not queue behind them.
    cap = delivery.ENDPOINT_MAX_IN_FLIGHT
    assert len(slow_seen) <= cap * (done_s / SLOW_SECONDS + 1)
    assert len(slow_seen) < per_client[1] * 0.25
    # ... and the dead endpoint was never given more than its cap of threads at once.
    assert dead_attempts <= cap * (done_s / 15 + 1)
    # Submits and callbacks (another worker) were not starved either: every job finished.
    assert completed == JOBS
