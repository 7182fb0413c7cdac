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
from orchestrator.services import Services
from tests.helpers import job_maker
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
    """``make_job(client_id, state=QUEUED, **options)``: see :func:`tests.helpers.store_job`."""
    return job_maker(svc)


def dead_letter(svc: Services, job_id: str) -> str:
    """Dead-letter the job's event as an exhausted retry schedule would."""
    event_id = next(iter(svc.jobs.event_ids(job_id).values()))
    evt = Event.from_hash(svc.redis.hgetall(f"evt:{event_id}"))
    delivery._dead_letter(svc, evt, "retry schedule exhausted")
    return event_id
