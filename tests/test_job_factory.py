"""The ``job_factory`` fixture: every state reachable through allowed moves, its options kept."""

from __future__ import annotations

import pytest

from orchestrator.jobs.state import ALLOWED, JobState
from tests.helpers import JOB_MODEL, job_path


@pytest.mark.parametrize("state", list(JobState))
def test_every_state_is_reached_along_allowed_moves(svc, job_factory, state) -> None:
    current = JobState.QUEUED
    for target, _ in job_path(state, request_id="pv-1"):
        assert target in ALLOWED[current], (current, target)
        current = target
    job_id = job_factory(state)
    assert svc.jobs.state_of(job_id) is state


def test_a_client_is_made_unless_given(svc, job_factory, client_factory) -> None:
    first, second = job_factory(), job_factory()
    assert svc.jobs.get_raw(first)["client_id"] != svc.jobs.get_raw(second)["client_id"]
    client, _ = client_factory("given")
    assert svc.jobs.get_raw(job_factory(client=client))["client_id"] == client.id
    assert svc.jobs.get_raw(job_factory(client="cli_x"))["client_id"] == "cli_x"


def test_options_reach_the_stored_job(svc, job_factory) -> None:
    failed = job_factory(JobState.FAILED, request_id="pv-9", error_code="upstream_rejected")
    job = svc.jobs.get(failed)
    assert job["request_id"] == "pv-9" and job["error"]["code"] == "upstream_rejected"
    assert job["model"] == JOB_MODEL
    assert svc.jobs.job_for_request("pv-9") == failed
    done = job_factory(JobState.COMPLETED, model="pixverse", media_url="https://cdn.test/x.mp4")
    assert svc.jobs.get(done)["output"]["media_url"] == ["https://cdn.test/x.mp4"]
    assert svc.jobs.get(done)["model"] == "pixverse"
    assert svc.jobs.get_raw(job_factory(webhook_mode="sync"))["webhook_mode"] == "sync"
