"""Fixtures for the console's unit tests: an operator, a signed-in browser-like client, and
jobs put into given states through the real state machine (over fakeredis)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher

from ops import operators
from ops.operators import OperatorStore
from orchestrator.core.records import Event
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.services import Services
from webhooks.outbound import delivery

OPERATOR = "alice"
PASSWORD = "correct horse battery"
MODEL = "pixverse-v6-text-to-video"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: Any, name: str = OPERATOR, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/ops/login").get_data(as_text=True))
    return client.post("/ops/login", data={"name": name, "password": password, "csrf_token": token})


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, with test-sized cost: the production cost is deliberately slow."""
    monkeypatch.setattr(operators, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def operator(svc: Services) -> str:
    OperatorStore(svc.redis).create(OPERATOR, PASSWORD)
    return OPERATOR


@pytest.fixture
def browser(app, operator):
    """A test client signed in as the operator; ``browser.csrf`` is its session's token."""
    client = app.test_client()
    answer = sign_in(client)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    client.csrf = csrf_of(client.get("/ops/").get_data(as_text=True))
    return client


@pytest.fixture
def make_job(svc: Services) -> Callable[..., str]:
    return job_maker(svc)


def job_maker(svc: Services) -> Callable[..., str]:
    """Makes a job of ``client_id`` moved through the state machine to ``state``."""

    def make(
        client_id: str,
        state: JobState = JobState.QUEUED,
        *,
        model: str = MODEL,
        request_id: str | None = None,
        error_code: str = "upstream_error",
        now: float | None = None,
        media_url: str | None = None,
    ) -> str:
        job_id = svc.jobs.create(
            NewJob(client_id, model, {"prompt": "a red fox"}, {"ref": "r1"}, None, 0.3, "terminal"),
            now=now,
        ).job_id
        path: list[tuple[JobState, dict[str, Any]]] = []
        if state is JobState.QUEUED:
            return job_id
        path.append((JobState.SUBMITTING, {}))
        if state is JobState.SUBMIT_UNKNOWN:
            path.append((JobState.SUBMIT_UNKNOWN, {}))
        elif state is not JobState.SUBMITTING:
            accepted = {"request_id": request_id} if request_id else {}
            if request_id:
                path.append((JobState.SUBMITTED, {**accepted, "upstream_status": "QUEUED"}))
            if state is JobState.PROCESSING:
                path.append((JobState.PROCESSING, {"upstream_status": "PROCESSING"}))
            elif state is JobState.COMPLETED:
                output = {
                    "media_url": [media_url or "https://cdn.test/v.mp4"],
                    "media_type": "video/mp4",
                }
                path.append((JobState.COMPLETED, {"output": output}))
            elif state is JobState.FAILED:
                path.append((JobState.FAILED, {"error": {"code": error_code, "message": "x"}}))
            elif state is JobState.CANCELED:
                path.append((JobState.CANCELED, {}))
        current = JobState.QUEUED
        for target, fields in path:
            result = svc.states.transition(
                job_id,
                expected=[current],
                to=target,
                fields=fields,
                emit=target in (JobState.COMPLETED, JobState.FAILED),
                now=now,
            )
            assert result.applied, (current, target)
            current = target
        if request_id:
            svc.jobs.bind_request(request_id, job_id, 3600)
        return job_id

    return make


def dead_letter(svc: Services, job_id: str) -> str:
    """Dead-letter the job's event as an exhausted retry schedule would."""
    event_id = next(iter(svc.redis.hvals(f"job:{job_id}:events")))
    evt = Event.from_hash(svc.redis.hgetall(f"evt:{event_id}"))
    delivery._dead_letter(svc, evt, "retry schedule exhausted")
    return event_id
