"""Helpers shared by the lifecycle and intake system tests."""

from __future__ import annotations

from typing import Any

import requests

from orchestrator.core import keys
from tests.helpers import System, job_event_ids, wait_for

TERMINAL = ("completed", "failed", "canceled")
JOB_WAIT_SECONDS = 45.0


def submit(
    system: System, api_key: str, model: str, model_input: dict[str, Any], **headers: str
) -> requests.Response:
    return system.api(api_key).post(
        f"{system.web}/v1/jobs",
        json={"model": model, "input": model_input},
        headers=headers,
        timeout=10,
    )


def wait_terminal(system: System, api_key: str, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = system.job(api_key, job_id)
        return job if job["status"] in TERMINAL else None

    return wait_for(done, JOB_WAIT_SECONDS, what=f"{job_id} terminal")


def wait_events_settled(system: System, job_id: str) -> dict[str, str]:
    """The job's outbox events, once every one of them has been delivered."""

    def settled() -> dict[str, str] | None:
        events = job_event_ids(system.redis, job_id)
        if not events:
            return None
        states = [system.redis.hget(keys.event(e), "state") for e in events.values()]
        return events if all(s == "delivered" for s in states) else None

    return wait_for(settled, JOB_WAIT_SECONDS, what=f"{job_id} events delivered")


def wait_sim_idle(system: System) -> None:
    wait_for(lambda: system.sim_stats()["callbacks_pending"] == 0, 30, what="sim idle")


def events_for(system: System, name: str, job_id: str) -> list[dict[str, Any]]:
    return [e for e in system.consumer_events(name) if e["job_id"] == job_id]
