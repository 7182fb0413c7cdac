"""Shared fixtures: fake and real Redis, the whole system as real processes, and factories.

Unit tests use fakeredis. Anything that claims a behaviour of the system uses ``system``: a real
Redis, the Pixazo simulator and a consumer as separate servers, the web app under gunicorn,
a Celery worker process and Celery beat. Each test that uses it starts from clean Redis keys
and a reset simulator and consumer.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import pytest
import redis
import requests

from devtools.devstack import Orchestrator, Stack, base_env, redis_answers
from orchestrator.app import create_app
from orchestrator.core import enqueue
from orchestrator.core.clients import DEFAULT_EVENT_TYPES, Client, ClientStore
from orchestrator.core.config import Settings
from orchestrator.services import EXTENSION_NAME, Services, build_services

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_DB = 14  # the system tests' database on the shared Redis
SYSTEM_ENV = {
    "ORCHESTRATOR_STUCK_AFTER_SECONDS": "3",
    "ORCHESTRATOR_JOB_DEADLINE_SECONDS": "120",
    "ORCHESTRATOR_POLL_SCHEDULE": "1,2,3",
    "ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE": "0,1,1,1,1",
    "ORCHESTRATOR_SUBMIT_RETRY_SCHEDULE": "1,1,2,2,3,3,5,5,5,5",
    "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS": "40",  # > submit timeout 30 + connect 5 + 2
    "ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS": "0.5",
    "ORCHESTRATOR_BALANCE_PROBE_SECONDS": "1",
    "ORCHESTRATOR_SUBMIT_RATE_PER_SECOND": "200",
    "ORCHESTRATOR_SUBMIT_CONCURRENCY": "32",
    "ORCHESTRATOR_CLIENT_RATE_LIMIT_PER_MINUTE": "100000",
    "ORCHESTRATOR_WORKER_STALL_SECONDS": "15",
}
SIM_FLAGS = (
    "--queued-seconds",
    "0.3",
    "--processing-seconds",
    "0.7",
    "--seed",
    "7",
    "--sync-interval",
    "0.5",
)
# Keys the broker and the beat scheduler own; everything else in the test db is ours to clear.
_KEEP_PREFIXES = ("_kombu", "redbeat")
WAIT_SECONDS = 60.0


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


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
    return _with_db(url, TEST_DB)


def clean_keys(r: redis.Redis) -> None:
    """Delete our keys (not the broker's bindings). Tests only: production code never scans."""
    batch = [k for k in r.scan_iter(count=1000) if not str(k).startswith(_KEEP_PREFIXES)]
    for i in range(0, len(batch), 500):
        r.delete(*batch[i : i + 500])


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    r = fakeredis.FakeRedis(decode_responses=True)
    yield r
    r.flushall()


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": "redis://127.0.0.1:6379/15",
        "broker_url": "redis://127.0.0.1:6379/15",
        "pixazo_base_url": "http://pixazo.test",
        "pixazo_api_key": "test-pixazo-key-123456",
        "public_base_url": "https://orchestrator.test",
        "secret_key": "test-secret-key-0123456789",
        "allow_http": False,
        "testing": True,
    }
    values.update(overrides)
    return Settings(**values)


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


# ----------------------------------------------------------------------------- real processes


@dataclass
class System:
    """The running system, plus helpers to drive it over HTTP."""

    orch: Orchestrator
    redis: redis.Redis

    @property
    def web(self) -> str:
        return self.orch.web_url

    @property
    def sim(self) -> str:
        return self.orch.sim_url

    @property
    def consumer(self) -> str:
        return self.orch.consumer_url

    def new_client(
        self,
        name: str,
        event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES,
        callback_url: str | None = None,
    ) -> tuple[Client, str]:
        """A client whose endpoint is the consumer's ``/hooks/<name>``, secret registered."""
        url = callback_url or f"{self.consumer}/hooks/{name}"
        client, api_key = ClientStore(self.redis).create(name, url, event_types)
        requests.post(
            f"{self.consumer}/_consumer/config",
            json={"name": name, "secret": client.webhook_secrets[0]},
            timeout=5,
        )
        return client, api_key

    def api(self, api_key: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        return session

    def sim_config(self, **knobs: Any) -> dict[str, Any]:
        answer = requests.post(f"{self.sim}/_sim/config", json=knobs, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def sim_stats(self) -> dict[str, Any]:
        return requests.get(f"{self.sim}/_sim/stats", timeout=5).json()

    def consumer_events(self, name: str) -> list[dict[str, Any]]:
        return requests.get(
            f"{self.consumer}/_consumer/events", params={"name": name}, timeout=5
        ).json()

    def job(self, api_key: str, job_id: str) -> dict[str, Any]:
        return self.api(api_key).get(f"{self.web}/v1/jobs/{job_id}", timeout=10).json()

    def timeline(self, job_id: str) -> list[dict[str, Any]]:
        import json

        return [json.loads(x) for x in self.redis.lrange(f"job:{job_id}:timeline", 0, -1)]

    def reset(self) -> None:
        requests.post(f"{self.sim}/_sim/reset", json={"config": True}, timeout=5)
        requests.post(f"{self.consumer}/_consumer/reset", timeout=5)
        clean_keys(self.redis)


def wait_for(
    check: Callable[[], Any],
    timeout: float = WAIT_SECONDS,
    every: float = 0.2,
    what: str = "condition",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def start_system(
    redis_url: str,
    env_overrides: dict[str, str] | None = None,
    sim_flags: tuple[str, ...] = SIM_FLAGS,
    worker_concurrency: int = 4,
    stack: Stack | None = None,
    delivery_threads: int | None = None,
) -> tuple[Stack, System]:
    """``delivery_threads``: the thread count of the Procfile's ``delivery`` worker, the only
    consumer of the delivery queue (the worker starts one of the default size otherwise)."""
    stack = stack or Stack()
    env = base_env(redis_url, **{**SYSTEM_ENV, **(env_overrides or {})})
    orch = Orchestrator(stack, redis_url, env)
    try:
        orch.start_sim(*sim_flags)
        orch.start_consumer()
        orch.start_web()
        if delivery_threads:
            orch.start_delivery_worker(delivery_threads)
        orch.start_worker(concurrency=worker_concurrency)
        orch.start_beat()
    except Exception:
        stack.stop_all()
        raise
    return stack, System(orch, redis.Redis.from_url(redis_url, decode_responses=True))


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


def fresh(system: System) -> Iterator[System]:
    """A test's view of a shared system: clean keys, reset simulator and consumer, both ends."""
    system.reset()
    yield system
    system.reset()


@pytest.fixture
def system(system_session: System) -> Iterator[System]:
    yield from fresh(system_session)
