"""Polling a job whose callback has not come (fakeredis, a scripted status route)."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.core import clock, keys
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.services import Services
from orchestrator.upstream import polling

S = JobState
MODEL = "pixverse-v6-text-to-video"


class _Status:
    def __init__(self, *answers: tuple[int, dict | None, str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def status(self, request_id: str) -> tuple[int, dict | None, str]:
        self.calls += 1
        return self.answers.pop(0)


def submitted_job(svc: Services, client_factory: Callable) -> str:
    client, _ = client_factory()
    job = NewJob(
        client.id, "pixverse-v6-text-to-video", {"prompt": "x"}, {}, None, None, "terminal"
    )
    job_id = svc.jobs.create(job).job_id
    svc.states.transition(
        job_id, expected=[S.QUEUED], to=S.SUBMITTED, fields={"request_id": "pixverse_r1"}
    )
    return job_id


def test_each_poll_backs_off_along_the_schedule(svc, client_factory, settings) -> None:
    svc.settings = settings.with_overrides(poll_schedule=(10, 20, 40))
    job_id = submitted_job(svc, client_factory)
    processing = (200, {"request_id": "pixverse_r1", "status": "PROCESSING"}, "")
    svc.pixazo = _Status(processing, processing, processing, processing)
    for expected in (10, 20, 40, 40):
        before = clock.now()
        assert polling.poll(svc, job_id) == "polled"
        due = svc.redis.zscore(keys.DUE_POLL, job_id)
        assert before + expected <= due <= clock.now() + expected
    assert svc.jobs.state_of(job_id) is S.PROCESSING


def test_a_terminal_answer_finishes_the_job_and_stops_polling(svc, client_factory) -> None:
    job_id = submitted_job(svc, client_factory)
    done = {"request_id": "pixverse_r1", "status": "COMPLETED", "output": {"media_url": ["u"]}}
    svc.pixazo = _Status((200, done, ""))
    assert polling.poll(svc, job_id) == "terminal"
    assert svc.jobs.get(job_id)["status"] == "completed"
    assert svc.redis.zscore(keys.DUE_POLL, job_id) is None
    assert polling.poll(svc, job_id) == "skipped"
    assert svc.pixazo.calls == 1


def test_an_error_answer_is_recorded_and_polled_again(svc, client_factory) -> None:
    job_id = submitted_job(svc, client_factory)
    svc.pixazo = _Status((503, None, "busy"))
    assert polling.poll(svc, job_id) == "polled"
    assert svc.jobs.state_of(job_id) is S.SUBMITTED
    [entry] = [e for e in svc.jobs.timeline(job_id) if e.get("type") == "poll"]
    assert entry["http_status"] == 503 and entry["answer"] == "busy"
