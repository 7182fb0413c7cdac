"""The apply_callback task: a recorded callback moves the job forward once, then is gone."""

from __future__ import annotations

import pytest

from orchestrator.core import enqueue, keys
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from webhooks.inbound.inbox import CallbackInbox
from workers.callbacks import apply_callback

S = JobState


@pytest.fixture
def job_id(svc) -> str:
    jid = svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id
    svc.states.transition(
        jid, expected=[S.QUEUED], to=S.SUBMITTED, fields={"request_id": "pixverse_r"}
    )
    return jid


def record(svc, job_id: str, status: str, **extra) -> str:
    body = {"request_id": "pixverse_r", "status": status, "output": None, "error": None, **extra}
    return CallbackInbox(svc.redis).record(job_id, body, "{}").inbox_id


def test_completed_callback_completes_once(app, svc, sent_tasks, job_id):
    inbox_id = record(
        svc,
        job_id,
        "COMPLETED",
        output={"media_url": ["https://cdn/x.mp4"], "media_type": "video/mp4"},
    )
    with app.app_context():
        assert apply_callback(inbox_id) == "applied"
        assert apply_callback(inbox_id) == "gone"
    job = svc.jobs.get(job_id)
    assert job["status"] == "completed" and job["output"]["media_url"] == ["https://cdn/x.mp4"]
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0 and len(svc.jobs.event_ids(job_id)) == 1


def test_late_processing_after_terminal_is_recorded_and_ignored(app, svc, sent_tasks, job_id):
    with app.app_context():
        apply_callback(record(svc, job_id, "FAILED", error="bad prompt"))
        assert apply_callback(record(svc, job_id, "PROCESSING")) == "already past this status"
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"] == {
        "code": "upstream_failed",
        "message": "bad prompt",
    }
    assert svc.jobs.timeline(job_id)[-1]["type"] == "ignored"
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]


def test_error_status_fails_with_upstream_error(app, svc, sent_tasks, job_id):
    with app.app_context():
        apply_callback(record(svc, job_id, "ERROR"))
    assert svc.jobs.get(job_id)["error"]["code"] == "upstream_error"


def test_a_task_that_dies_after_the_move_is_applied_once_by_its_redelivery(
    app, svc, sent_tasks, job_id, monkeypatch
):
    """Killed between the move and the done: the entry stays, and the task run again finds the
    job past the status; one move, one event, and then the entry is gone."""
    inbox_id = record(svc, job_id, "FAILED", error="bad prompt")
    with app.app_context(), monkeypatch.context() as mp:

        def dies(*args, **kwargs):
            raise ConnectionError("the worker lost Redis before the done")

        mp.setattr(svc.redis, "pipeline", dies)
        with pytest.raises(ConnectionError):
            apply_callback(inbox_id)
    assert svc.jobs.state_of(job_id) is S.FAILED and svc.redis.exists(keys.inbox(inbox_id))
    with app.app_context():
        assert apply_callback(inbox_id) == "already past this status"
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0 and not svc.redis.exists(keys.inbox(inbox_id))
    assert len(svc.jobs.event_ids(job_id)) == 1
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
