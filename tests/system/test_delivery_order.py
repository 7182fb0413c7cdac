"""Events of one job reach the consumer in order, through real processes.

Pixazo's sync mode sends a PROCESSING progress callback before the terminal one, so a client
that opts in gets ``job.processing`` and then ``job.completed``. The consumer answers slowly, so
``job.completed`` is made while ``job.processing`` is still in flight: it must wait for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from devtools.devstack import Stack
from orchestrator.core import keys
from tests.conftest import System, start_system, wait_for

pytestmark = pytest.mark.integration

ANSWER_SECONDS = 2.0
JOBS = 4
SYNC_SIM_FLAGS = (
    "--queued-seconds",
    "0.2",
    "--processing-seconds",
    "1.5",
    "--seed",
    "7",
    "--sync-interval",
    "0.3",
)


@pytest.fixture(scope="module")
def sync_system() -> Iterator[System]:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        _, system = start_system(
            url,
            env_overrides={"PIXAZO_WEBHOOK_MODE": "sync"},
            sim_flags=SYNC_SIM_FLAGS,
            stack=stack,
            delivery_threads=8,
        )
        yield system
    finally:
        stack.stop_all()


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_job_processing_is_never_delivered_after_job_completed(sync_system):
    system = sync_system
    _, key = system.new_client("order", event_types=("job.processing", "job.completed"))
    requests.post(
        f"{system.consumer}/_consumer/config",
        json={"name": "order", "delay_seconds": ANSWER_SECONDS},
        timeout=5,
    )
    job_ids = []
    for i in range(JOBS):
        answer = system.api(key).post(
            f"{system.web}/v1/jobs",
            json={"model": "pixverse-v6-text-to-video", "input": {"prompt": f"cat {i}"}},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        job_ids.append(answer.json()["id"])
    events = wait_for(
        lambda: (got := system.consumer_events("order")) and len(got) >= 2 * JOBS and got,
        timeout=90,
        what="both events of every job",
    )
    assert len(events) == 2 * JOBS and all(e["status"] == 200 and e["verified"] for e in events)
    waits = []
    for job_id in job_ids:
        mine = [e for e in events if e["job_id"] == job_id]
        assert [e["type"] for e in mine] == ["job.processing", "job.completed"]
        processing, completed = mine
        made = system.redis.hgetall(keys.event(completed["webhook_id"]))["created_at"]
        # job.completed existed before job.processing had been answered, and still waited:
        assert _ts(made) < _ts(processing["received_at"]) + ANSWER_SECONDS
        assert _ts(completed["received_at"]) >= _ts(processing["received_at"]) + ANSWER_SECONDS
        waits.append(round(_ts(completed["received_at"]) - _ts(made), 2))
    print(f"\njob.completed waited for the in-flight job.processing: {waits} s")
