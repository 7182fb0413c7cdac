"""What the dashboard shows, each number read from an index or a due-time set.

Counts by status are ZCOUNTs over the status indexes (scored by creation time), stuck jobs are
the oldest members of the deadline set (every non-terminal job sits there, scored by its
deadline), dead letters are their own set: no number here costs a scan of the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from orchestrator.core import broker, clock, enqueue, keys
from orchestrator.core.records import is_snapshot_field
from orchestrator.core.services import Services
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.upstream import pause
from webhooks.outbound import redeliver

HOUR_SECONDS = 3600
DAY_SECONDS = 24 * HOUR_SECONDS
STUCK_SHOWN = 15
DEAD_SHOWN = 10


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
            {k: v for k, v in evt.items() if not is_snapshot_field(k)}
            for evt in redeliver.dead_letters(svc, None, limit)
        ],
    }


def queue_depths(svc: Services) -> dict[str, Any]:
    """Messages waiting in each Celery queue, asked of the broker through kombu (Redis or
    RabbitMQ alike); a broker that does not answer is shown, not raised."""
    try:
        depths = broker.queue_depths(svc.settings.broker_url, enqueue.ALL_QUEUES)
    except broker.BrokerUnavailable as exc:
        return {"error": str(exc), "queues": {}}
    return {"error": None, "queues": depths}


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
