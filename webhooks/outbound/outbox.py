"""The outbox: event records, their settling and dead letters, and replay.

Events are written to the outbox by the state machine in the same step as the transition that
causes them, so each exists once per job and type, with a stable ``evt_`` id that is the
``webhook-id`` of every attempt. Waits live in the ``due:delivery`` sorted set that beat drains,
not in Celery ETAs. The event hash holds the authoritative ``due_at``: beat's claim pushes the
set's score ahead, so the score alone cannot say whether an attempt is allowed yet.

A settled or dead-lettered event keeps the job's retention TTL, so it can be replayed as long
as its job is kept; the per-client dead-letter index is what ``dead_since`` (bulk replay) reads.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from orchestrator.core import clock, keys
from orchestrator.core.records import PACKED_SNAPSHOT, Event, packed_snapshot_chunks
from orchestrator.core.services import Services
from orchestrator.core.urls import safe_url
from orchestrator.jobs import timeline
from webhooks.outbound.scripts import run_script
from webhooks.outbound.transport import Attempt

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, SKIPPED = "pending", "delivered", "dead", "skipped"
SETTLED = (DELIVERED, DEAD, SKIPPED)
FINAL_EVENT_TYPES = frozenset({"job.completed", "job.failed", "job.canceled"})
BULK_REPLAY_BATCH = 500


def get_event(svc: Services, event_id: str) -> Event | None:
    data = cast("dict[str, str]", svc.redis.hgetall(keys.event(event_id)))
    return Event.from_hash(data) if data else None


def earlier_pending(svc: Services, evt: Event) -> bool:
    """Events of one job reach the consumer in the order they were made."""
    for other_id in cast("list[str]", svc.redis.hvals(keys.job_events(evt.job_id))):
        if other_id == evt.id:
            continue
        other = svc.redis.hmget(keys.event(other_id), "seq", "state")
        if other[0] is not None and int(other[0]) < evt.seq and other[1] not in SETTLED:
            return True
    return False


def note(svc: Services, job_id: str, entry: dict[str, Any]) -> None:
    """Append to a job's timeline only while the job is kept: never a timeline without a TTL."""
    svc.redis.rpushx(keys.timeline(job_id), json.dumps({"at": clock.iso(), **entry}))


def record_attempt(svc: Services, evt: Event, number: int, url: str, attempt: Attempt) -> None:
    """The attempt on the job's timeline and the event's own list; the URL without its query,
    which often carries the consumer's token."""
    entry = {
        "type": "delivery_attempt",
        "event_id": evt.id,
        "event_type": evt.type,
        "attempt": number,
        "url": safe_url(url),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response": attempt.response,  # its first KB (transport.RESPONSE_EXCERPT_BYTES)
        "error": attempt.error,
        "retry_after": attempt.retry_after,
    }
    note(svc, evt.job_id, entry)
    svc.redis.rpush(keys.event_attempts(evt.id), json.dumps({"at": clock.iso(), **entry}))


def reschedule(svc: Services, evt: Event, at: float, **fields: str) -> None:
    """The event's next attempt at ``at``: in its hash (authoritative) and the due set."""
    pipe = svc.redis.pipeline(transaction=True)
    changes: dict[Any, str] = {"due_at": repr(at), **fields}
    pipe.hset(keys.event(evt.id), mapping=changes)
    pipe.zadd(keys.DUE_DELIVERY, {evt.id: at})
    pipe.execute()


def settle(svc: Services, evt: Event, state: str, reason: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt.id), mapping={"state": state, "settled_at": clock.iso(), "note": reason}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt.id)
    pipe.zrem(keys.DEAD_DELIVERIES, evt.id)
    pipe.zrem(keys.client_dead_deliveries(evt.client_id), evt.id)
    for key in (keys.event(evt.id), keys.event_attempts(evt.id)):
        pipe.expire(key, svc.retention_seconds)
    pipe.execute()
    _pack_snapshot(svc, evt)
    _compact_if_final(svc, evt)


def dead_letter(svc: Services, evt: Event, reason: str) -> None:
    now = clock.now()
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt.id), mapping={"state": DEAD, "settled_at": clock.iso(now), "note": reason}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt.id)
    pipe.zadd(keys.DEAD_DELIVERIES, {evt.id: now})
    client_dead = keys.client_dead_deliveries(evt.client_id)
    pipe.zadd(client_dead, {evt.id: now})
    pipe.zremrangebyscore(client_dead, "-inf", f"({now - svc.retention_seconds}")
    for key in (keys.event(evt.id), keys.event_attempts(evt.id)):
        pipe.expire(key, svc.retention_seconds)  # replayable as long as the job is kept
    pipe.execute()
    _pack_snapshot(svc, evt)
    note(svc, evt.job_id, {"type": "dead_lettered", "event_id": evt.id, "reason": reason})
    _compact_if_final(svc, evt)
    log.warning("event %s dead-lettered: %s", evt.id, reason)


def _pack_snapshot(svc: Services, evt: Event) -> None:
    """A settled event keeps its snapshot for the whole retention (a replay sends it again):
    packed and cut into short fields, the hash stays a compact listpack. The same dict comes
    back, so the same body is sent (tests/webhooks/outbound/test_delivery.py)."""
    if evt.snapshot:
        chunks = packed_snapshot_chunks(evt.snapshot)
        run_script(svc, "event_pack", [keys.event(evt.id)], [PACKED_SNAPSHOT, *chunks])


def _compact_if_final(svc: Services, evt: Event) -> None:
    """The job's last event is settled: its timeline is complete until an operator acts, and
    is kept packed for the retention (:mod:`orchestrator.jobs.timeline`)."""
    if evt.type in FINAL_EVENT_TYPES:
        timeline.compact(svc.redis, evt.job_id)


def replay(svc: Services, event_id: str) -> bool:
    """Put a dead-lettered (or delivered) event back in the queue, due now, with fresh attempts.

    Refused (False) once its job has expired: the replay would re-create keys the retention
    already let go. The event keeps a TTL while pending again; settling renews it.
    """
    evt = get_event(svc, event_id)
    if evt is None:
        return False
    entry = json.dumps({"at": clock.iso(), "type": "replay", "event_id": event_id})
    replay_keys = [
        keys.event(event_id),
        keys.event_attempts(event_id),
        keys.job(evt.job_id),
        keys.timeline(evt.job_id),
        keys.DUE_DELIVERY,
        keys.DEAD_DELIVERIES,
        keys.client_dead_deliveries(evt.client_id),
    ]
    args = [event_id, repr(clock.now()), svc.retention_seconds, entry]
    return bool(run_script(svc, "event_replay", replay_keys, args))


def dead_since(svc: Services, client_id: str, since: float) -> list[str]:
    """Ids of ``client_id``'s events dead-lettered at or after ``since``, oldest first."""
    found: list[str] = []
    index = keys.client_dead_deliveries(client_id)
    while True:
        batch = cast(
            "list[str]",
            svc.redis.zrangebyscore(index, since, "+inf", start=len(found), num=BULK_REPLAY_BATCH),
        )
        found.extend(batch)
        if len(batch) < BULK_REPLAY_BATCH:
            return found
