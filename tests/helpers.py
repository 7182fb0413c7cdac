"""Test helpers that are not fixtures: the system-test settings and the running ``System``,
polling, settings for unit tests, and a job put into a given state through the state machine.

``tests/conftest.py`` builds its fixtures from these (``job_factory`` on :func:`store_job`) and
re-exports the names, so ``from tests.conftest import X`` keeps working; new code imports from here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import requests
from redis.connection import AbstractConnection

from devtools.devstack import Orchestrator, Stack, base_env
from orchestrator.core import keys, redis_conn
from orchestrator.core.clients import DEFAULT_EVENT_TYPES, Client, ClientStore
from orchestrator.core.config import Settings
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob, event_ids_of
from orchestrator.jobs.timeline import read as read_timeline
from orchestrator.reconcile import steps
from orchestrator.services import Services

TIMELINE_LIMIT = 100_000  # entries: every one a job's timeline has

# Debian's Chromium, as the browser tests drive it (headless, nothing fetched from outside).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

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


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def count_commands(monkeypatch: Any, r: redis.Redis) -> list[tuple[Any, ...]]:
    """Every command ``r`` sends from now on (scripts as EVALSHA; pipelines not), for tests
    that bound a path's round trips."""
    calls: list[tuple[Any, ...]] = []
    real = r.execute_command

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(r, "execute_command", counted)
    return calls


def count_round_trips(monkeypatch: Any) -> list[int]:
    """Round trips to Redis from now on, of every client in this process: one per command
    sent alone and one per pipeline (a one-element list, read it as ``trips[0]``)."""
    trips = [0]
    real = AbstractConnection.send_packed_command

    def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> Any:
        trips[0] += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    return trips


def clean_keys(r: redis.Redis) -> None:
    """Delete our keys (not the broker's bindings). Tests only: production code never scans."""
    batch = [k for k in r.scan_iter(count=1000) if not str(k).startswith(_KEEP_PREFIXES)]
    for i in range(0, len(batch), 500):
        r.delete(*batch[i : i + 500])


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
        return read_timeline(self.redis, job_id, TIMELINE_LIMIT)

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
    return stack, System(orch, redis_conn.connect(redis_url, decode_responses=True))


def fresh(system: System) -> Iterator[System]:
    """A test's view of a shared system: clean keys, reset simulator and consumer, both ends."""
    system.reset()
    yield system
    system.reset()


# ----------------------------------------------------------------------------- stored jobs

JOB_MODEL = "pixverse-v6-text-to-video"
JOB_INPUT: dict[str, Any] = {"prompt": "a red fox"}
JOB_METADATA: dict[str, Any] = {"ref": "r1"}
JOB_MEDIA_URL = "https://cdn.test/v.mp4"
_EMITS = frozenset({JobState.COMPLETED, JobState.FAILED})


def job_path(
    state: JobState,
    *,
    request_id: str | None = None,
    error_code: str = "upstream_error",
    media_url: str | None = None,
) -> list[tuple[JobState, dict[str, Any]]]:
    """Allowed moves (and the fields each writes) from queued to ``state``: through a submit,
    then accepted (``submitted``) when ``request_id`` is given or ``state`` needs it."""
    S = JobState
    if state is S.QUEUED:
        return []
    path: list[tuple[JobState, dict[str, Any]]] = [(S.SUBMITTING, {})]
    if state is S.SUBMITTING:
        return path
    if state is S.SUBMIT_UNKNOWN:
        return [*path, (S.SUBMIT_UNKNOWN, {})]
    if request_id or state is S.SUBMITTED:
        accepted = {"request_id": request_id} if request_id else {}
        path.append((S.SUBMITTED, {**accepted, "upstream_status": "QUEUED"}))
    if state is S.PROCESSING:
        path.append((S.PROCESSING, {"upstream_status": "PROCESSING"}))
    elif state is S.COMPLETED:
        output = {"media_url": [media_url or JOB_MEDIA_URL], "media_type": "video/mp4"}
        path.append((S.COMPLETED, {"output": output}))
    elif state is S.FAILED:
        path.append((S.FAILED, {"error": {"code": error_code, "message": "x"}}))
    elif state is S.CANCELED:
        path.append((S.CANCELED, {}))
    return path


def store_job(
    svc: Services,
    client_id: str,
    state: JobState = JobState.QUEUED,
    *,
    model: str = JOB_MODEL,
    model_input: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    callback_url: str | None = None,
    estimated_cost_usd: float | None = 0.3,
    webhook_mode: str = "terminal",
    request_id: str | None = None,
    error_code: str = "upstream_error",
    media_url: str | None = None,
    now: float | None = None,
) -> str:
    """Store a job of ``client_id`` (``svc.jobs.create``) and move it to ``state`` through the
    state machine along allowed moves (:func:`job_path`); ``request_id`` is bound to the job.
    Terminal moves write their event into the outbox as the real ones do."""
    job = NewJob(
        client_id,
        model,
        dict(JOB_INPUT if model_input is None else model_input),
        dict(JOB_METADATA if metadata is None else metadata),
        callback_url,
        estimated_cost_usd,
        webhook_mode,
    )
    job_id = svc.jobs.create(job, now=now).job_id
    current = JobState.QUEUED
    path = job_path(state, request_id=request_id, error_code=error_code, media_url=media_url)
    for target, fields in path:
        result = svc.states.transition(
            job_id, expected=[current], to=target, fields=fields, emit=target in _EMITS, now=now
        )
        assert result.applied, (current, target)
        current = target
    assert svc.jobs.state_of(job_id) is state
    if request_id:
        svc.jobs.bind_request(request_id, job_id, 3600)
    return job_id


def job_maker(svc: Services) -> Callable[..., str]:
    """``store_job`` bound to ``svc``: ``make(client_id, state=QUEUED, **options) -> job_id``."""

    def make(client_id: str, state: JobState = JobState.QUEUED, **options: Any) -> str:
        return store_job(svc, client_id, state, **options)

    return make


# ----------------------------------------------------------------------------- reconcile


def reconcile_pass(svc: Services, now: float | None = None) -> steps.TickReport:
    """One batch of every due set, in the fan-out's order, in this process: what the reconcile
    workers do after a tick, serially (counts are members handled per set)."""
    report = steps.TickReport()
    for step in steps.STEPS:
        report.add(step.name, steps.run_batch(svc, step.name, now))
    return report


def on_round_trips(
    monkeypatch: Any,
    r: redis.Redis,
    before: Callable[[str], None] = lambda name: None,
    after: Callable[[], None] = lambda: None,
) -> None:
    """Call ``before(name)`` and ``after()`` around every round trip ``r`` makes from now on: a
    command's (a script's is ``EVALSHA``), or a pipeline's or transaction's sent at once
    (``PIPELINE``). ``monkeypatch`` undoes it; None leaves it for the life of ``r``."""
    real_command, real_pipeline = r.execute_command, r.pipeline

    def command(*args: Any, **kwargs: Any) -> Any:
        before(str(args[0]))
        reply = real_command(*args, **kwargs)
        after()
        return reply

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*e_args: Any, **e_kwargs: Any) -> Any:
            if len(pipe):
                before("PIPELINE")
            reply = real_execute(*e_args, **e_kwargs)
            after()
            return reply

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    for name, replacement in (("execute_command", command), ("pipeline", pipeline)):
        if monkeypatch is None:
            setattr(r, name, replacement)
        else:
            monkeypatch.setattr(r, name, replacement)


def named_round_trips(monkeypatch: Any, r: redis.Redis) -> list[str]:
    """Every round trip ``r`` makes from now on: a command's name (a script is ``EVALSHA``), or
    ``PIPELINE`` for a pipeline or transaction sent at once, for tests that pin a path's round
    trips (a script's first EVALSHA on a fresh Redis also shows its ``SCRIPT LOAD``)."""
    trips: list[str] = []
    on_round_trips(monkeypatch, r, before=trips.append)
    return trips


def job_event_ids(r: redis.Redis, job_id: str) -> dict[str, str]:
    """A job's events, "type:generation" -> event id, wherever the layout keeps them (the job
    hash's ``e:`` fields; ``job:{id}:events`` for a job made before issue 12)."""
    return event_ids_of(r.hgetall(keys.job(job_id)), r.hgetall(keys.job_events(job_id)))
