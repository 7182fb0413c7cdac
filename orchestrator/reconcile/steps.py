"""Beat's periodic work: drain every due-time set, a bounded batch at a time, under one lock.

Each drain reads only members whose time has come (ZRANGEBYSCORE ... LIMIT), so a tick costs
in proportion to what is due, never to the number of jobs stored. Members handed to a task are
pushed a little into the future first: if the task is lost, they come due again by themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.lock
from redis.exceptions import LockError

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.due import DueSet
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.services import Services
from orchestrator.jobs import lifecycle
from orchestrator.jobs.state import (
    ACTIVE,
    GEN_ATTEMPTS,
    IN_SUBMIT,
    MAY_BE_CHARGED,
    UNCLAIMED,
    JobState,
    TransitionResult,
)
from orchestrator.upstream import pause, submission

log = logging.getLogger(__name__)
S = JobState
LOCK_KEY = keys.RECONCILE_LOCK
CLAIM_SECONDS = 60.0  # a handed-out member comes due again after this if its task is lost


@dataclass
class TickReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


def due(svc: Services, zset: str, now: float, batch: int) -> list[str]:
    return DueSet(svc.redis, zset).due(now, batch)


def _claim_and_send(
    svc: Services, zset: str, members: list[str], now: float, send: Callable[[str], bool]
) -> int:
    if not members:
        return 0
    DueSet(svc.redis, zset).push_back(members, now + CLAIM_SECONDS)
    for member in members:
        send(member)
    return len(members)


def _drain(svc: Services, zset: str, now: float, batch: int, send: Callable[[str], bool]) -> int:
    return _claim_and_send(svc, zset, due(svc, zset, now, batch), now, send)


def drain_submits(svc: Services, now: float, batch: int) -> int:
    submits = DueSet(svc.redis, keys.DUE_SUBMIT)
    members = submits.due(now, batch)
    paused = pause.paused(svc.redis) if members else None
    if paused:
        probe_every = svc.settings.balance_probe_seconds
        probing = pause.auto_resumes(paused)
        if not probing or not pause.claim_probe(svc.redis, members[0], probe_every):
            submits.push_back(members, now + probe_every)
            return 0
        members = members[:1]
    return _claim_and_send(svc, keys.DUE_SUBMIT, members, now, enqueue.submit)


def expire_submitting(svc: Services, now: float, batch: int) -> int:
    """A submit that never finished (worker killed): its outcome is unknown, not failed."""
    grace = svc.settings.unknown_grace_seconds
    moved = 0
    submitting = DueSet(svc.redis, keys.DUE_SUBMITTING)
    for job_id in submitting.due(now, batch):
        result = svc.states.transition(
            job_id,
            expected=[S.SUBMITTING],
            to=S.SUBMIT_UNKNOWN,
            fields=MAY_BE_CHARGED,
            due_at=now + grace,
            timeline={"reason": "submit did not finish (worker lost?); waiting for a callback"},
        )
        moved += result.applied
        if result.previous is None or not result.applied:
            submitting.remove(job_id)
    return moved


def resolve_unknown(svc: Services, now: float, batch: int) -> int:
    """No callback claimed the job within the grace period: only now is a resubmit safe enough.

    A callback recorded in the meantime has bound its request to the job (the ``require``
    guard sees it) even if its apply task has not run: the job is then followed, not resent.
    A job whose attempts are spent fails instead (its last submit was given the same grace).
    """
    moved = 0
    budget = len(svc.settings.submit_retry_schedule)
    unknown = DueSet(svc.redis, keys.DUE_UNKNOWN)
    for job_id in unknown.due(now, batch):
        attempts = int(svc.redis.hget(keys.job(job_id), GEN_ATTEMPTS) or 0)
        if attempts >= budget:
            result = _fail_unknown(svc, job_id, attempts)
        else:
            result = svc.states.transition(
                job_id,
                expected=[S.SUBMIT_UNKNOWN],
                to=S.QUEUED,
                due_at=now + CLAIM_SECONDS,
                timeline={"reason": "no callback within the grace period: resubmitting"},
                require=UNCLAIMED,
            )
            if result.applied:
                enqueue.submit(job_id)
        if result.guarded:
            submission.follow_claimed(svc, job_id, S.SUBMIT_UNKNOWN)
        elif not result.applied:
            unknown.remove(job_id)
        moved += result.applied or result.guarded
    return moved


def _fail_unknown(svc: Services, job_id: str, attempts: int) -> TransitionResult:
    return lifecycle.move(
        svc,
        job_id,
        expected=[S.SUBMIT_UNKNOWN],
        to=S.FAILED,
        fields={
            "error": {
                "code": submission.UNAVAILABLE,
                "message": f"gave up after {attempts} attempts of unknown outcome",
            }
        },
        timeline={"reason": "no callback within the grace period and no attempts left"},
        emit=True,
        require=UNCLAIMED,
    )


def drain_polls(svc: Services, now: float, batch: int) -> int:
    return _drain(svc, keys.DUE_POLL, now, batch, enqueue.poll)


def drain_callbacks(svc: Services, now: float, batch: int) -> int:
    return _drain(svc, keys.DUE_CALLBACK, now, batch, enqueue.apply_callback)


def drain_deliveries(svc: Services, now: float, batch: int) -> int:
    return _drain(svc, keys.DUE_DELIVERY, now, batch, enqueue.deliver)


def expire_deadlines(svc: Services, now: float, batch: int) -> int:
    failed = 0
    is_paused = pause.paused(svc.redis) is not None
    deadlines = DueSet(svc.redis, keys.DUE_DEADLINE)
    for job_id in deadlines.due(now, batch):
        state = svc.jobs.state_of(job_id)
        waiting_for_balance = is_paused and state is S.QUEUED
        code = ErrorCode.INSUFFICIENT_BALANCE if waiting_for_balance else ErrorCode.TIMEOUT
        message = (
            "Pixazo balance was insufficient until the deadline"
            if waiting_for_balance
            else "The job did not finish before its deadline"
        )
        fields: dict[str, Any] = {"error": {"code": code, "message": message}}
        if state in IN_SUBMIT:  # failed mid-submit: Pixazo may have the job all the same
            fields.update(MAY_BE_CHARGED)
        result = lifecycle.move(
            svc,
            job_id,
            expected=[state] if state in ACTIVE else [],
            to=S.FAILED,
            fields=fields,
            timeline={"reason": code},
            emit=True,
        )
        if not result.applied and result.previous not in ACTIVE:
            deadlines.remove(job_id)  # gone or terminal; a moved job stays due
        failed += result.applied
    return failed


STEPS: tuple[tuple[str, Callable[[Services, float, int], int]], ...] = (
    ("deadline", expire_deadlines),
    ("callbacks", drain_callbacks),
    ("submitting", expire_submitting),
    ("unknown", resolve_unknown),
    ("submits", drain_submits),
    ("polls", drain_polls),
    ("deliveries", drain_deliveries),
)


def tick(svc: Services, now: float | None = None) -> TickReport | None:
    """One pass over every due set; None when another process holds the lock."""
    moment = clock.now() if now is None else now
    lock = tick_lock(svc)
    if not lock.acquire(blocking=False):
        return None
    report = TickReport()
    try:
        for name, step in STEPS:
            report.add(name, step(svc, moment, svc.settings.reconcile_batch_size))
    finally:
        try:
            lock.release()  # atomic: deletes the key only while it still holds our token
        except LockError:
            log.warning("reconcile tick outlived its lock (%ss)", lock.timeout)
    return report


def tick_lock(svc: Services) -> redis.lock.Lock:
    """The lock one tick holds (non-blocking; it lapses by itself if its holder dies)."""
    seconds = max(svc.settings.reconcile_interval_seconds * 4, 10)  # Lock sets PX int(s * 1000)
    return redis.lock.Lock(svc.redis, LOCK_KEY, timeout=seconds, blocking=False)
