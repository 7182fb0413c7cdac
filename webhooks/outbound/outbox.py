"""The outbox: event records, their settling and dead letters, and replay.

Events are written to the outbox by the state machine in the same step as the transition that
causes them, so each exists once per job and type, with a stable ``evt_`` id that is the
``webhook-id`` of every attempt. Waits live in the ``due:delivery`` sorted set that beat drains,
not in Celery ETAs. The event hash holds the authoritative ``due_at``: beat's claim pushes the
set's score ahead, so the score alone cannot say whether an attempt is allowed yet.

A settled or dead-lettered event keeps the job's retention TTL, so it can be replayed as long
as its job is kept; the per-client dead-letter index is what ``dead_since`` (bulk replay) reads.

What follows an attempt is one Lua step (:func:`finish`, ``event_finish.lua``): the endpoint
lease given back, the attempt counted (compare-and-set on the count) and recorded, the event
settled, dead-lettered or rescheduled, the delivery lock released. A settled event is kept
compact, a listpack of short fields: what a replay needs packed (:mod:`.settled`), and its last
``ATTEMPT_RECORDS_KEPT`` attempts as one short field each (``t<n>``, :func:`attempt_log`), the
whole attempt being on the job's timeline; no second key per event.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from orchestrator.core import clock, keys
from orchestrator.core.records import Event
from orchestrator.core.services import Services
from orchestrator.core.urls import safe_url
from orchestrator.jobs import timeline
from orchestrator.jobs.state import GENERATION
from webhooks.outbound import settled
from webhooks.outbound.endpoints import endpoint_hash, hand_on
from webhooks.outbound.scripts import run_script
from webhooks.outbound.settled import event_from_hash
from webhooks.outbound.transport import Attempt

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, SKIPPED = "pending", "delivered", "dead", "skipped"
SETTLED = (DELIVERED, DEAD, SKIPPED)
FINAL_EVENT_TYPES = frozenset({"job.completed", "job.failed", "job.canceled"})
BULK_REPLAY_BATCH = 500


def get_event(svc: Services, event_id: str) -> Event | None:
    data = cast("dict[str, str]", svc.redis.hgetall(keys.event(event_id)))
    return load_event(svc, data) if data else None


def load_event(svc: Services, raw: dict[str, str]) -> Event:
    """The event of ``raw``; a pending one that keeps no data of its own (a replay of an event
    in :data:`settled.FROM_JOB`) gets the job hash as its snapshot, while the job is kept at the
    event's generation (otherwise its snapshot stays empty: nothing to send)."""
    evt = event_from_hash(raw)
    if evt.state != PENDING or evt.snapshot or evt.type not in settled.FROM_JOB:
        return evt
    job = svc.jobs.get_raw(evt.job_id)
    if job is None or job.get(GENERATION, "1") != str(evt.generation):
        return evt
    return dataclasses.replace(evt, snapshot=job)


def earlier_pending(svc: Services, evt: Event) -> bool:
    """Events of one job reach the consumer in the order they were made. A job's first event
    (``seq`` 1) has none before it: no round trip."""
    if evt.seq <= 1:
        return False
    for other_id in svc.jobs.event_ids(evt.job_id).values():
        if other_id == evt.id:
            continue
        other = svc.redis.hmget(keys.event(other_id), "seq", "state")
        if other[0] is not None and int(other[0]) < evt.seq and other[1] not in SETTLED:
            return True
    return False


def note(svc: Services, job_id: str, entry: dict[str, Any]) -> None:
    """Append to a job's timeline only while the job is kept: never a timeline without a TTL."""
    timeline.append(svc.redis, job_id, json.dumps({"at": clock.iso(), **entry}), kept_only=True)


ATTEMPT_RECORDS_KEPT = 16  # the last attempts an event keeps (each in full on the timeline)
_RECORD_BYTES = 64  # a record fits a listpack value on a default Redis (hash-max-listpack-value)
RETRY = "retry"
_EXPECTED_TRIES = 3  # compare-and-set rounds before the attempt is counted unconditionally
_FINISH_KEYS = 8


@dataclass(frozen=True)
class Sent:
    """One attempt made: what the finish step records (and the lease it gives back)."""

    url: str
    attempt: Attempt
    lapse: float  # when its endpoint lease lapses
    at: float  # when the answer (or the failure) came, unix seconds


@dataclass(frozen=True)
class Settlement:
    """Where the event goes next: settled (DELIVERED, SKIPPED), DEAD, or RETRY at ``due_at``."""

    state: str
    reason: str = ""
    due_at: float = 0.0
    before_dead: dict[str, Any] | None = None  # a timeline entry written before the dead letter


def attempt_entry(evt: Event, number: int, url: str, attempt: Attempt) -> dict[str, Any]:
    """The attempt on the job's timeline; the URL without its query, which often carries the
    consumer's token."""
    return {
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


def attempt_record(attempt: Attempt, at: float) -> str:
    """The attempt as the event keeps it: "<unix ms> <status or -> <latency ms> <error...>",
    cut to fit one listpack value (the whole attempt is on the job's timeline)."""
    status = "-" if attempt.status_code is None else str(attempt.status_code)
    text = f"{int(at * 1000)} {status} {attempt.latency_ms} {attempt.error}".rstrip()
    return text.encode()[:_RECORD_BYTES].decode("utf-8", "ignore")


def attempt_log(r: redis.Redis, event_id: str) -> list[dict[str, Any]]:
    """The attempts an event keeps (the last ``ATTEMPT_RECORDS_KEPT``), oldest first: ``at``
    (ISO), ``status_code``, ``latency_ms``, ``error``. Events settled by earlier versions kept
    them in a list of JSON entries: those come first."""
    older = cast("list[str]", r.lrange(keys.event_attempts(event_id), 0, -1))
    log_ = [json.loads(entry) for entry in older]
    raw = cast("dict[str, str]", r.hgetall(keys.event(event_id)))
    numbered = sorted(
        (int(name[1:]), value)
        for name, value in raw.items()
        if name.startswith("t") and name[1:].isdigit()
    )
    for _, value in numbered:
        at_ms, status, latency, *error = value.split(" ", 3)
        log_.append(
            {
                "at": clock.iso(int(at_ms) / 1000),
                "status_code": None if status == "-" else int(status),
                "latency_ms": int(latency),
                "error": error[0] if error else "",
            }
        )
    return log_


def record_attempt(svc: Services, evt: Event, number: int, url: str, attempt: Attempt) -> None:
    """The attempt on the job's timeline and (compactly) in the event, counted as ``number``
    whatever the count says now (:func:`finish` is the usual way, in one step with the rest)."""
    entry = attempt_entry(evt, number, url, attempt)
    note(svc, evt.job_id, entry)
    tries = int(svc.redis.hincrby(keys.event(evt.id), "tries", 1))
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(keys.event(evt.id), f"t{tries}", attempt_record(attempt, clock.now()))
    pipe.hdel(keys.event(evt.id), f"t{tries - ATTEMPT_RECORDS_KEPT}")
    pipe.execute()


def finish(
    svc: Services,
    evt: Event,
    decide: Callable[[int], Settlement],
    sent: Sent | None = None,
    token: str = "",
) -> Settlement:
    """Everything after an attempt in one script (``event_finish.lua``): the endpoint lease
    given back, the attempt counted and recorded, the event settled, dead-lettered or
    rescheduled as ``decide(attempt number)`` says, the delivery lock released (when ``token``
    holds it); a settled event's hash made compact. The count is compare-and-set: when it moved
    since ``evt`` was read (a replay), the decision is taken again on the new number."""
    before = evt.attempts
    settlement = decide(before + 1)
    if sent is None:
        args = _finish_args(svc, evt, settlement, sent, token)
        _run_finish(svc, evt, sent, args)
        return settlement
    lapse = repr(sent.lapse)
    for _ in range(_EXPECTED_TRIES):
        args = _finish_args(svc, evt, settlement, sent, token)
        args[8], args[9] = str(before), json.dumps(_attempt_note(evt, before + 1, sent))
        args[12] = lapse
        if _run_finish(svc, evt, sent, args) != 0:
            return settlement
        lapse = ""  # the lease is given back already
        before = int(svc.redis.hget(keys.event(evt.id), "attempts") or 0)
        settlement = decide(before + 1)
    record_attempt(svc, evt, before + 1, sent.url, sent.attempt)  # counted as it stands
    args = _finish_args(svc, evt, settlement, None, token)
    _run_finish(svc, evt, sent, args)
    return settlement


def _run_finish(svc: Services, evt: Event, sent: Sent | None, args: list[Any]) -> int:
    """event_finish.lua; the event it took off the endpoint's waiting set, if any, is handed
    the freed slot (:func:`webhooks.outbound.endpoints.hand_on`). Its answer code."""
    code, handed = run_script(svc, "event_finish", _finish_keys(evt, sent), args)
    if handed:
        hand_on(svc, str(handed))
    return int(code)


def _finish_keys(evt: Event, sent: Sent | None) -> list[str]:
    """KEYS of event_finish.lua (see its header)."""
    return [
        keys.event(evt.id),
        keys.timeline(evt.job_id),
        keys.DUE_DELIVERY,
        keys.DEAD_DELIVERIES,
        keys.client_dead_deliveries(evt.client_id),
        keys.endpoint_in_flight(endpoint_hash(sent.url if sent else "")),
        keys.delivery_lock(evt.id),
        keys.event_attempts(evt.id),
        keys.endpoint_waiting(endpoint_hash(sent.url if sent else "")),
        keys.job(evt.job_id),
    ]


def _finish_args(
    svc: Services, evt: Event, settlement: Settlement, sent: Sent | None, token: str
) -> list[Any]:
    """ARGV of event_finish.lua (see its header); the attempt's count and entry (ARGV[9] and
    ARGV[10]) are filled in by :func:`finish`."""
    now = clock.now()
    state = settlement.state
    before_dead = dead = ""
    if state == DEAD:
        stamp = {"at": clock.iso(now)}
        if settlement.before_dead:
            before_dead = json.dumps({**stamp, **settlement.before_dead})
        dead = json.dumps(
            {**stamp, "type": "dead_lettered", "event_id": evt.id, "reason": settlement.reason}
        )
    chunks = settled.packing(evt.snapshot, evt.type) if state != RETRY else None
    return [
        evt.id,
        state,
        settlement.reason,
        repr(now),
        clock.iso(now),
        svc.retention_seconds,
        repr(settlement.due_at),
        clock.iso(settlement.due_at) if state == RETRY else "",
        "",
        "",
        attempt_record(sent.attempt, sent.at) if sent else "",
        ATTEMPT_RECORDS_KEPT,
        repr(sent.lapse) if sent else "",
        token,
        before_dead,
        dead,
        "" if chunks is None else settled.DATA_PREFIX,
        *(chunks or []),
    ]


def _attempt_note(evt: Event, number: int, sent: Sent) -> dict[str, Any]:
    return {"at": clock.iso(sent.at), **attempt_entry(evt, number, sent.url, sent.attempt)}


def settle(svc: Services, evt: Event, state: str, reason: str) -> None:
    """Settle an event without an attempt (skipped: nothing to send it to)."""
    finish(svc, evt, lambda _: Settlement(state, reason))
    compact_if_final(svc, evt)


def dead_letter(svc: Services, evt: Event, reason: str) -> None:
    """Dead-letter an event without an attempt (its endpoint is disabled)."""
    finish(svc, evt, lambda _: Settlement(DEAD, reason))
    compact_if_final(svc, evt)
    log.warning("event %s dead-lettered: %s", evt.id, reason)


def compact_if_final(svc: Services, evt: Event) -> None:
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
