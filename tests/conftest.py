"""Shared fixtures: fake and real Redis, the whole system as real processes, and factories.

Unit tests use fakeredis. Anything that claims a behaviour of the system uses ``system``: a real
Redis, the Pixazo simulator and a consumer as separate servers, the web app under gunicorn,
a Celery worker process and Celery beat. Each test that uses it starts from clean Redis keys
and a reset simulator and consumer.

The helpers these fixtures are built from live in ``tests/helpers.py`` and are re-exported here.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import fakeredis
import pytest
import redis

from devtools.devstack import Stack, redis_answers
from orchestrator.app import create_app
from orchestrator.core import enqueue, metrics
from orchestrator.core.clients import DEFAULT_EVENT_TYPES, Client
from orchestrator.core.config import Settings
from orchestrator.jobs.state import JobState
from orchestrator.services import EXTENSION_NAME, Services, build_services
from tests.helpers import (
    DEFAULT_REDIS_URL,
    SIM_FLAGS,
    SYSTEM_ENV,
    TEST_DB,
    WAIT_SECONDS,
    System,
    clean_keys,
    fresh,
    make_settings,
    start_system,
    store_job,
    wait_for,
    with_db,
)

# Re-exported: tests import these from here (``from tests.conftest import X``) as well.
__all__ = [
    "DEFAULT_REDIS_URL",
    "SIM_FLAGS",
    "SYSTEM_ENV",
    "TEST_DB",
    "WAIT_SECONDS",
    "System",
    "clean_keys",
    "fresh",
    "make_settings",
    "start_system",
    "wait_for",
]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis of REDIS_URL (default 127.0.0.1:6379), started here if it is not up."""
    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    if not redis_answers(url):
        port = urlsplit(url).port or 6379
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(url) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert redis_answers(url), f"no Redis at {url}"
    return with_db(url, TEST_DB)


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    r = fakeredis.FakeRedis(decode_responses=True)
    yield r
    r.flushall()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def sent_tasks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    """Unit tests record what would be enqueued instead of talking to a broker."""
    sent: list[tuple[str, tuple[str, ...]]] = []

    def record(task_name: str, *args: str) -> bool:
        sent.append((task_name, args))
        return True

    monkeypatch.setattr(enqueue, "send", record)
    return sent


@pytest.fixture
def svc(settings: Settings, fake_redis: fakeredis.FakeRedis, sent_tasks: list) -> Services:
    return build_services(settings, connection=fake_redis)


@pytest.fixture
def app(settings: Settings, svc: Services):
    application = create_app(settings)
    application.extensions[EXTENSION_NAME] = svc
    metrics.RECORDER.configure(svc.redis, background=False)  # create_app named settings' Redis
    return application


@pytest.fixture
def client_factory(svc: Services) -> Callable[..., tuple[Client, str]]:
    def make(
        name: str = "acme",
        callback_url: str | None = None,
        event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES,
    ) -> tuple[Client, str]:
        return svc.clients.create(name, callback_url, event_types)

    return make


@pytest.fixture
def job_factory(
    svc: Services, client_factory: Callable[..., tuple[Client, str]]
) -> Callable[..., str]:
    """``job_factory(state=QUEUED, *, client=None, **options) -> job_id``: a stored job
    (``svc.jobs.create``) moved to ``state`` through the state machine along allowed moves.

    ``client`` is a ``Client`` or a client id; without one, each job gets a new client from
    ``client_factory``. Options are :func:`tests.helpers.store_job`'s: ``model``,
    ``model_input``, ``metadata``, ``callback_url``, ``estimated_cost_usd``, ``webhook_mode``,
    ``request_id`` (bound to the job), ``error_code`` (of a failed job), ``media_url``, ``now``.
    """

    def make(
        state: JobState = JobState.QUEUED, *, client: Client | str | None = None, **options: Any
    ) -> str:
        if client is None:
            client = client_factory()[0]
        client_id = client if isinstance(client, str) else client.id
        return store_job(svc, client_id, state, **options)

    return make


# ----------------------------------------------------------------------------- real processes


@pytest.fixture(scope="session")
def system_session(redis_url: str) -> Iterator[System]:
    """One system for the session. ORCHESTRATOR_TEST_REDIS=own gives it a private redis-server
    on a free port instead of REDIS_URL's db 14 (for several test sessions at once)."""
    stack = Stack(supervise=True)
    if os.environ.get("ORCHESTRATOR_TEST_REDIS") == "own":
        _, redis_url = stack.start_redis()
    clean_keys(redis.Redis.from_url(redis_url, decode_responses=True))
    stack, system = start_system(redis_url, stack=stack)
    try:
        yield system
    finally:
        stack.stop_all()


@pytest.fixture
def system(system_session: System) -> Iterator[System]:
    yield from fresh(system_session)
