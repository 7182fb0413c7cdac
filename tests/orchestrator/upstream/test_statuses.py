"""Applying an upstream status: forward only, and bound to the job's own request."""

from __future__ import annotations

import pytest

from orchestrator.core import enqueue, keys
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.upstream.statuses import DECISION_FIELDS, apply_upstream

S = JobState
STUCK = 300


@pytest.fixture
def job_id(svc, client_factory) -> str:
    client, _ = client_factory("acme")
    new = NewJob(client.id, "pixverse", {}, {}, None, None, "terminal")
    return svc.jobs.create(new).job_id


def apply(svc, job_id: str, status: str, request_id: str = "pixverse_r2", **extra):
    body = {"request_id": request_id, "status": status, "output": None, "error": None, **extra}
    return apply_upstream(svc, job_id, body, "callback", STUCK)


def test_forward_only(svc, sent_tasks, job_id):
    assert apply(svc, job_id, "QUEUED").state is S.SUBMITTED
    assert apply(svc, job_id, "PROCESSING").state is S.PROCESSING
    late = apply(svc, job_id, "QUEUED")
    assert not late.moved and late.ignored_reason
    media = {"media_url": ["https://cdn/v.mp4"], "media_type": "video/mp4"}
    done = apply(svc, job_id, "COMPLETED", output=media)
    assert done.moved and done.event_id
    for status in ("PROCESSING", "FAILED", "ERROR", "COMPLETED"):
        assert not apply(svc, job_id, status).moved
    job = svc.jobs.get(job_id)
    assert job["status"] == "completed" and job["output"] == media
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.jobs.job_for_request("pixverse_r2") == job_id


@pytest.mark.parametrize("status", ["FAILED", "ERROR", "PROCESSING", "QUEUED"])
def test_another_requests_non_completion_does_not_touch_the_bound_request(
    svc, sent_tasks, job_id, status
):
    apply(svc, job_id, "QUEUED", "pixverse_r2")
    ignored = apply(svc, job_id, status, "pixverse_r1", error="old submit failed")
    assert not ignored.moved
    job = svc.jobs.get(job_id)
    assert job["status"] == "submitted" and job["request_id"] == "pixverse_r2"
    assert job["error"] is None
    assert svc.jobs.timeline(job_id)[-1]["type"] == "ignored"
    assert sent_tasks == []


def test_another_requests_completion_still_delivers_the_video(svc, sent_tasks, job_id):
    apply(svc, job_id, "QUEUED", "pixverse_r2")
    media = {"media_url": ["https://cdn/r1.mp4"], "media_type": "video/mp4"}
    done = apply(svc, job_id, "COMPLETED", "pixverse_r1", output=media)
    assert done.moved and svc.jobs.get(job_id)["output"] == media


def test_unknown_job(svc):
    assert apply(svc, "job_missing", "COMPLETED").ignored_reason == "job not found"


def test_a_late_failure_of_a_request_an_operator_retry_replaced_is_ignored(svc, job_id):
    apply(svc, job_id, "QUEUED", "pixverse_r1")
    apply(svc, job_id, "FAILED", "pixverse_r1", error="moderation")
    assert actions.retry(svc, job_id, "ops:olga", confirm_charge=True).ok
    assert svc.jobs.get(job_id)["status"] == "queued"
    late = apply(svc, job_id, "FAILED", "pixverse_r1", error="moderation (resent)")
    assert not late.moved and late.ignored_reason == "another request of this job"
    assert svc.jobs.get(job_id)["status"] == "queued"
    assert apply(svc, job_id, "QUEUED", "pixverse_r2").state is S.SUBMITTED


def test_the_fields_a_caller_read_are_used_once_and_read_again_after_a_guarded_move(
    svc, sent_tasks, job_id, monkeypatch
):
    """A caller's read (the callback's record) saves the first read; when the move finds that
    read stale (an operator's retry since), the job is read again as without it."""
    stale = {f: v for f, v in svc.jobs.get_raw(job_id).items() if f in DECISION_FIELDS}
    svc.redis.hset(keys.job(job_id), "generation", "2")  # what a retry does, after the read
    reads: list[str] = []
    real = svc.jobs.get_raw
    monkeypatch.setattr(svc.jobs, "get_raw", lambda j: reads.append(j) or real(j))
    body = {"request_id": "pixverse_r2", "status": "QUEUED", "output": None, "error": None}
    applied = apply_upstream(svc, job_id, body, "callback", STUCK, job=stale)
    assert applied.state is S.SUBMITTED and reads == [job_id]


@pytest.mark.parametrize("status", ["COMPLETED", "PROCESSING"])
def test_then_runs_once_with_the_binding_whatever_the_outcome(svc, sent_tasks, job_id, status):
    apply(svc, job_id, "COMPLETED")
    sent: list[list] = []
    body = {"request_id": "pixverse_r3", "status": status, "output": None, "error": None}

    def then(pipe) -> None:
        sent.append(list(pipe.command_stack))
        pipe.set("marker", "1")

    assert not apply_upstream(svc, job_id, body, "callback", STUCK, then=then).moved
    assert len(sent) == 1 and sent[0] == [] and svc.redis.get("marker") == "1"
    other = svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id
    done = apply_upstream(svc, other, {**body, "status": "QUEUED"}, "callback", STUCK, then=then)
    assert done.moved and len(sent) == 2 and len(sent[1]) == 1  # the binding, then ours
    assert svc.jobs.job_for_request("pixverse_r3") == other
