"""Helpers shared by the resilience and chaos system tests: a dedicated system per module,
bulk intake over HTTP, and the figures the tests assert and print (read from Redis and from the
simulator's own counters, never from our code's opinion of itself)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psutil
import requests

from devtools.devstack import Proc, Stack
from orchestrator.jobs.state import TERMINAL
from orchestrator.jobs.timeline import read as read_timeline
from tests.conftest import System, start_system, wait_for
from tests.helpers import TIMELINE_LIMIT

MODEL = "pixverse-v6-text-to-video"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRY_PAUSE_SECONDS = 0.5
TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)
# A dedicated system's timings: short submit timeout and grace so that unknown outcomes resolve
# within a test, and a long submit budget so that 50% of 429s cannot exhaust it by chance.
RESILIENT_ENV = {
    "ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS": "1",
    "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS": "9",  # the least start-up takes: > 1 + 5 + 2
    "ORCHESTRATOR_SUBMIT_RETRY_SCHEDULE": ",".join(["1"] * 4 + ["2"] * 26),
}


@contextmanager
def dedicated_system(
    env: dict[str, str] | None = None,
    appendonly: bool = False,
    worker_concurrency: int = 4,
    supervise: bool = False,
) -> Iterator[tuple[Stack, System, Proc]]:
    """A whole system on its own redis-server; everything it started is stopped at the end.
    ``supervise``: web, worker and beat are restarted if they exit, as a platform would."""
    stack = Stack(supervise=supervise)
    try:
        redis_proc, url = stack.start_redis(appendonly=appendonly)
        stack, system = start_system(
            url,
            {**RESILIENT_ENV, **(env or {})},
            worker_concurrency=worker_concurrency,
            stack=stack,
        )
        yield stack, system, redis_proc
    finally:
        stack.stop_all()


def post_jobs(
    system: System, api_key: str, n: int, threads: int = 12, retry_for: float = 0.0
) -> list[str]:
    """Create ``n`` jobs concurrently; returns the ids of those intake accepted.

    With ``retry_for`` each job is posted with its own Idempotency-Key and retried, as a client
    should, after a 503, a 429 or a lost connection until that many seconds have passed (a
    replay answers 200 with the same job)."""
    session = system.api(api_key)
    batch = uuid.uuid4().hex[:12]

    def one(i: int) -> str | None:
        headers = {"Idempotency-Key": f"{batch}-{i}"} if retry_for else {}
        give_up = time.monotonic() + retry_for
        while True:
            try:
                answer = session.post(
                    f"{system.web}/v1/jobs",
                    json={"model": MODEL, "input": {"prompt": f"chaos {i}"}},
                    headers=headers,
                    timeout=15,
                )
            except requests.RequestException:
                answer = None
            if answer is not None and answer.status_code in ((200, 202) if retry_for else (202,)):
                return str(answer.json()["id"])
            if answer is not None and answer.status_code not in RETRYABLE_STATUSES:
                return None
            if time.monotonic() >= give_up:
                return None
            time.sleep(RETRY_PAUSE_SECONDS)

    with ThreadPoolExecutor(threads) as pool:
        return [job_id for job_id in pool.map(one, range(n)) if job_id]


def states(system: System, job_ids: list[str]) -> dict[str, str]:
    pipe = system.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(f"job:{job_id}", "status")
    return dict(zip(job_ids, pipe.execute(), strict=True))


def count_states(system: System, job_ids: list[str]) -> Counter:
    return Counter(states(system, job_ids).values())


def wait_terminal(system: System, job_ids: list[str], timeout: float, what: str) -> Counter:
    def done() -> bool:
        return all(s in TERMINAL_VALUES for s in states(system, job_ids).values())

    try:
        wait_for(done, timeout=timeout, every=0.5, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: {count_states(system, job_ids)}") from None
    return count_states(system, job_ids)


def job_of_hook(url: str) -> str:
    """``.../webhooks/pixazo/<job_id>/<token>`` -> job_id."""
    return url.rstrip("/").split("/")[-2]


def accepted_per_job(system: System) -> Counter:
    stats = system.sim_stats()
    return Counter({job_of_hook(url): n for url, n in stats["accepted_by_webhook_url"].items()})


def assert_one_accepted_submit_each(system: System, job_ids: list[str]) -> dict[str, Any]:
    """The zero-double-charge proof: the simulator counted exactly one accepted submit per job."""
    per_job = accepted_per_job(system)
    stats = system.sim_stats()
    doubles = {j: n for j, n in per_job.items() if n != 1}
    missing = [j for j in job_ids if per_job.get(j, 0) == 0]
    assert doubles == {}, f"jobs charged more than once: {doubles}"
    assert missing == [], f"{len(missing)} jobs never accepted"
    assert stats["submits_accepted"] == len(job_ids)
    return stats


def events_by_job(system: System, name: str) -> dict[str, dict[str, set[str]]]:
    """job id -> event type -> the distinct verified event ids the consumer received (a
    redelivery of one event keeps its id, so it is one event)."""
    by_job: dict[str, dict[str, set[str]]] = {}
    for event in system.consumer_events(name):
        assert event["verified"], event
        by_type = by_job.setdefault(event["job_id"], {})
        by_type.setdefault(event["type"], set()).add(event["event_id"])
    return by_job


def timeline(system: System, job_id: str) -> list[dict[str, Any]]:
    return read_timeline(system.redis, job_id, TIMELINE_LIMIT)


def terminal_transitions(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("type") == "transition" and e.get("to") in TERMINAL_VALUES]


def pool_children(proc: Proc) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(proc.popen.pid).children()]
    except psutil.Error:
        return []


def kill_worker_group(stack: Stack, proc: Proc) -> None:
    """kill -9 of the worker's whole process group: main process and pool children at once."""
    os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(10)
    stack.procs.remove(proc)


def kill_one_child(proc: Proc, rng: random.Random) -> int | None:
    children = pool_children(proc)
    if not children:
        return None
    victim = rng.choice(children)
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return victim


def cli(system: System, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [system.orch.stack.python, "-m", "orchestrator", *args],
        env={**os.environ, **system.orch.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
