"""Polling Pixazo's status route for jobs whose callback has not come.

Callbacks are the fast path; polling is the safety net for callbacks that were dropped or that
our receiver missed. Each job backs off along the poll schedule, so a job Pixazo is slow on
costs a few status calls, not one per tick.
"""

from __future__ import annotations

import requests

from orchestrator.core import clock, keys
from orchestrator.core.due import DueSet
from orchestrator.core.records import job_from_store
from orchestrator.core.services import Services
from orchestrator.jobs.state import JobState
from orchestrator.upstream.statuses import apply_upstream

POLLABLE = (JobState.SUBMITTED, JobState.PROCESSING)


def next_poll_delay(schedule: tuple[int, ...], polls: int) -> float:
    return float(schedule[min(max(polls, 1), len(schedule)) - 1])


def poll(svc: Services, job_id: str, reason: str = "stuck") -> str:
    job = job_from_store(svc.jobs.get_raw(job_id))
    if job is None or job.state not in POLLABLE or not job.request_id:
        return "skipped"
    polls = int(svc.redis.hincrby(keys.job(job_id), "polls", 1))
    try:
        code, body, excerpt = svc.pixazo.status(job.request_id)
    except requests.RequestException as exc:
        code, body, excerpt = None, None, type(exc).__name__
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "poll",
            "reason": reason,
            "poll": polls,
            "http_status": code,
            "upstream_status": (body or {}).get("status"),
            "answer": excerpt,
        },
    )
    if body is not None:
        applied = apply_upstream(svc, job_id, body, "poll", svc.settings.stuck_after_seconds)
        if applied.state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED):
            return "terminal"
    delay = next_poll_delay(svc.settings.poll_schedule, polls)
    DueSet(svc.redis, keys.DUE_POLL).push_back([job_id], clock.now() + delay)
    return "polled"
