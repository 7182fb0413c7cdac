"""What the dashboard shows, each number read from an index or a due-time set.

Counts by status are ZCOUNTs over the status indexes (scored by creation time), stuck jobs are
the oldest members of the deadline set (every non-terminal job sits there, scored by its
deadline), dead letters are their own set: no number here costs a scan of the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from flask import current_app

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.services import Services
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.upstream import pause
from webhooks.outbound import redeliver

HOUR_SECONDS = 3600
DAY_SECONDS = 24 * HOUR_SECONDS
STUCK_SHOWN = 15
DEAD_SHOWN = 10
KOMBU_UNACKED = "unacked"  # kombu's Redis transport: messages a worker holds, not yet acked
_BROKER_EXTENSION = "ops_broker"


@dataclass(frozen=True)
class StatusCounts:
    status: str
    last_hour: int
    last_day: int
    stored: int


def status_counts(r: redis.Redis, now: float) -> list[StatusCounts]:
    hour_ms, day_ms = int((now - HOUR_SECONDS) * 1000), int((now - DAY_SECONDS) * 1000)
    pipe = r.pipeline(transaction=False)
    for status in PUBLIC_STATUSES:
        index = keys.status_index(status)
        pipe.zcount(index, hour_ms, "+inf")
        pipe.zcount(index, day_ms, "+inf")
        pipe.zcard(index)
    values = pipe.execute()
    return [
        StatusCounts(status, *values[i * 3 : i * 3 + 3]) for i, status in enumerate(PUBLIC_STATUSES)
    ]


def stuck_jobs(svc: Services, now: float, limit: int = STUCK_SHOWN) -> dict[str, Any]:
    """Non-terminal jobs older than STUCK_AFTER (oldest first), and the unknown-outcome submits.

    A job's deadline score is its (re)start time plus the deadline, so "started before
    now - STUCK_AFTER" is "deadline score below now - STUCK_AFTER + deadline"."""
    settings = svc.settings
    bound = now - settings.stuck_after_seconds + settings.job_deadline_seconds
    r = svc.redis
    pipe = r.pipeline(transaction=False)
    pipe.zcount(keys.DUE_DEADLINE, "-inf", bound)
    pipe.zrangebyscore(keys.DUE_DEADLINE, "-inf", bound, start=0, num=limit, withscores=True)
    pipe.zcard(keys.DUE_UNKNOWN)
    pipe.zcount(keys.DUE_POLL, "-inf", now)
    pipe.zcard(keys.DUE_SUBMIT)
    count, members, unknown, polls_due, submits_waiting = pipe.execute()
    raws = svc.jobs.get_many([m for m, _ in members])
    rows = []
    for (job_id, deadline), raw in zip(members, raws, strict=True):
        if raw is None:
            continue
        rows.append(
            {
                "id": job_id,
                "state": raw.get("status"),
                "model": raw.get("model"),
                "client_id": raw.get("client_id"),
                "request_id": raw.get("request_id") or None,
                "started_at": clock.iso(deadline - settings.job_deadline_seconds),
                "deadline_at": clock.iso(deadline),
                "updated_at": raw.get("updated_at"),
            }
        )
    return {
        "count": count,
        "rows": rows,
        "submit_unknown": unknown,
        "polls_due": polls_due,
        "submits_waiting": submits_waiting,
        "stuck_after_seconds": settings.stuck_after_seconds,
    }


def dead_letters(svc: Services, limit: int = DEAD_SHOWN) -> dict[str, Any]:
    return {
        "count": svc.redis.zcard(keys.DEAD_DELIVERIES),
        "rows": [
            {k: v for k, v in evt.items() if k != "snapshot"}
            for evt in redeliver.dead_letters(svc, None, limit)
        ],
    }


def broker(svc: Services) -> redis.Redis:
    """The broker's Redis: the job store's connection when they are the same server."""
    settings = svc.settings
    if settings.broker_url == settings.redis_url:
        return svc.redis
    conn = current_app.extensions.get(_BROKER_EXTENSION)
    if conn is None:
        conn = redis.Redis.from_url(settings.broker_url, decode_responses=True, socket_timeout=5)
        current_app.extensions[_BROKER_EXTENSION] = conn
    return conn


def queue_depths(svc: Services) -> dict[str, Any]:
    """Messages waiting in each Celery queue (a Redis list named after it), and held by workers."""
    try:
        pipe = broker(svc).pipeline(transaction=False)
        for name in enqueue.ALL_QUEUES:
            pipe.llen(name)
        pipe.hlen(KOMBU_UNACKED)
        *depths, unacked = pipe.execute()
    except redis.RedisError as exc:
        return {"error": f"broker unreachable ({type(exc).__name__})", "queues": {}, "unacked": 0}
    return {
        "error": None,
        "queues": dict(zip(enqueue.ALL_QUEUES, depths, strict=True)),
        "unacked": unacked,
    }


def overview(svc: Services) -> dict[str, Any]:
    now = clock.now()
    health = pause.health(svc.redis)
    answers = sum(health["answers_last_hours"].values())
    return {
        "now": clock.iso(now),
        "counts": status_counts(svc.redis, now),
        "stuck": stuck_jobs(svc, now),
        "dead": dead_letters(svc),
        "upstream": {**health, "answers": answers},
        "queues": queue_depths(svc),
    }
