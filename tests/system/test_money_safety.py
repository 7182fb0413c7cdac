"""Issue 8, defect 2 with real processes: a job Pixazo may have charged is never resubmitted by
an operator's retry without an explicit confirmation, and a confirmed retry is a new generation
with a fresh budget and its own events. (Before the fix: `jobs retry` resubmitted silently and
the simulator counted 2 charges.)"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from orchestrator.jobs.state import event_key
from tests.conftest import System, fresh, wait_for
from tests.helpers import job_event_ids
from tests.system.resilience_support import accepted_per_job, cli, dedicated_system, post_jobs

pytestmark = pytest.mark.integration
# One submit per generation: an unknown outcome with no callback fails the job after the grace.
ONE_ATTEMPT = {"ORCHESTRATOR_SUBMIT_RETRY_SCHEDULE": "1"}


@pytest.fixture(scope="module")
def one_attempt_stack() -> Iterator[tuple]:
    with dedicated_system(ONE_ATTEMPT) as started:
        yield started


@pytest.fixture
def ms(one_attempt_stack) -> Iterator[System]:
    _, system, _ = one_attempt_stack
    yield from fresh(system)


def _failed_unavailable(system: System, api_key: str) -> str:
    """A job Pixazo charged (500 after accept) that never called back: failed, no request_id."""
    system.sim_config(rate_500_after_accept=1.0, drop_rate=1.0)
    [job_id] = post_jobs(system, api_key, 1)
    job = wait_for(
        lambda: (j := system.job(api_key, job_id))["status"] == "failed" and j,
        30,
        what="failed after the grace",
    )
    assert job["error"]["code"] == "upstream_unavailable" and job["request_id"] is None
    assert accepted_per_job(system)[job_id] == 1
    return job_id


def test_retry_of_a_charged_job_needs_yes_and_then_is_a_new_generation(ms: System) -> None:
    _, key = ms.new_client("charged")
    job_id = _failed_unavailable(ms, key)
    ms.sim_config(rate_500_after_accept=0.0, drop_rate=0.0)

    refused = cli(ms, "jobs", "retry", job_id, "--json")
    assert refused.returncode == 4  # ExitCode.REFUSED
    assert json.loads(refused.stdout)["error"]["code"] == "needs_confirmation"
    bulk = cli(ms, "jobs", "retry-failed", "--error-code", "upstream_unavailable", "--json")
    assert bulk.returncode == 4 and json.loads(bulk.stdout)["error"]["details"]["charged"] == 1
    assert ms.job(key, job_id)["status"] == "failed"
    assert accepted_per_job(ms)[job_id] == 1  # nothing was sent

    assert cli(ms, "jobs", "retry", job_id, "--yes", "--json").returncode == 0
    done = wait_for(
        lambda: (j := ms.job(key, job_id))["status"] == "completed" and j, 30, what="completed"
    )
    assert done["attempts"] == 2 and accepted_per_job(ms)[job_id] == 2  # the confirmed one
    events = job_event_ids(ms.redis, job_id)
    assert set(events) == {event_key("job.failed", 1), event_key("job.completed", 2)}
    received = wait_for(lambda: len(ms.consumer_events("charged")) == 2 and 2, 20, what="events")
    assert received == 2
    got = ms.consumer_events("charged")
    assert all(e["verified"] for e in got)
    assert {e["webhook_id"] for e in got} == set(events.values())
