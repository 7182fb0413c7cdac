"""Sync webhook mode: Pixazo calls back on every status change, so progress arrives many times;
each job still ends with exactly one event per type, job.processing included when subscribed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.devstack import Stack
from tests.conftest import System, start_system
from tests.orchestrator.model_inputs import VALID_INPUTS
from tests.system.lifecycle_helpers import (
    events_for,
    submit,
    wait_events_settled,
    wait_sim_idle,
    wait_terminal,
)

pytestmark = pytest.mark.integration
SYNC_SIM_FLAGS = (
    "--queued-seconds",
    "0.5",
    "--processing-seconds",
    "1.5",
    "--seed",
    "11",
    "--sync-interval",
    "0.3",
)


@pytest.fixture(scope="module")
def sync_system(redis_url: str) -> Iterator[System]:
    stack = Stack()
    # Its own redis-server: a second system on the shared database would share its queues.
    _, redis_url = stack.start_redis()
    stack, system = start_system(
        redis_url,
        {"PIXAZO_WEBHOOK_MODE": "sync"},
        SYNC_SIM_FLAGS,
        worker_concurrency=2,
        stack=stack,
    )
    try:
        yield system
    finally:
        stack.stop_all()


def test_sync_mode_progress_gives_one_event_per_type(sync_system):
    system = sync_system
    _, key = system.new_client(
        "sync", event_types=("job.processing", "job.completed", "job.failed", "job.canceled")
    )
    ids = [
        submit(system, key, m, VALID_INPUTS[m]).json()["id"] for m in ("pixverse", "pixverse-i2v")
    ]
    for job_id in ids:
        job = wait_terminal(system, key, job_id)
        assert job["status"] == "completed", job
    wait_sim_idle(system)
    for job_id in ids:
        wait_events_settled(system, job_id)
        callbacks = [e for e in system.timeline(job_id) if e["type"] == "callback"]
        assert len(callbacks) >= 3  # QUEUED, PROCESSING (repeated), COMPLETED
        events = events_for(system, "sync", job_id)
        assert sorted(e["type"] for e in events) == ["job.completed", "job.processing"]
        assert all(e["verified"] for e in events)
