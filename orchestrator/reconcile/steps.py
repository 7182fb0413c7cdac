"""Beat's periodic work: drain the due-time sets in parallel batches on the reconcile queue.

The beat tick is a cheap fan-out (``fan_out``): for each due set it counts what is due (ZCOUNT)
and enqueues enough batch tasks to drain it, on the ``reconcile`` queue that only the Procfile's
``reconcile`` process consumes, so catch-up never waits for submit or poll slots and scales with
that process's concurrency and count. A batch (``run_batch``) claims its members atomically
(``DueSet.claim``: read up to ``batch`` due members and push them ``LEASE_SECONDS`` into the
future in one Lua step), so two batches never take the same member, and a batch that dies leaves
its members to come due again when the lease lapses. A claimed member handed to a task stays
pushed back the same way: if the task is lost, it comes due again by itself. Each read is
bounded (ZRANGEBYSCORE ... LIMIT), so the work is in proportion to what is due, never to the
number of jobs stored, and every per-member step is guarded, so doing one twice is harmless.
"""

from __future__ import annotations

import logging
import math
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
# A claimed member comes due again after this: if the task it was handed to is lost, or the batch
# that claimed it died. A batch is killed before (enqueue.RECONCILE_BATCH_TIME_LIMIT_SECONDS), so
# a live batch never sees its members claimed by another.
CLAIM_SECONDS = LEASE_SECONDS = 60.0
# One tick enqueues at most this many batches per due set (x the batch size, per interval): a
# bound on what a tick can put on the queue when a set holds a large backlog.
MAX_BATCHES_PER_SET = 64


@dataclass
class TickReport:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


def _send_each(members: list[str], send: Callable[[str], bool]) -> int:
    """Members already pushed back by their claim: a lost task's member comes due again."""
    for member in members:
        send(member)
    return len(members)


def drain_submits(svc: Services, members: list[str], now: float) -> int:
    """Queued jobs due for their (re)submit; during a 402 pause at most one probe goes, and the
    rest wait a probe interval."""
    paused = pause.paused(svc.redis) if members else None
    if paused:
        submits = DueSet(svc.redis, keys.DUE_SUBMIT)
        probe_every = svc.settings.balance_probe_seconds
        probing = pause.auto_resumes(paused)
        if not probing or not pause.claim_probe(svc.redis, members[0], probe_every):
            submits.push_back(members, now + probe_every)
            return 0
        submits.push_back(members[1:], now + probe_every)  # none may go before the probe's answer
        members = members[:1]
    return _send_each(members, enqueue.submit)


def expire_submitting(svc: Services, members: list[str], now: float) -> int:
    """A submit that never finished (worker killed): its outcome is unknown, not failed."""
    grace = svc.settings.unknown_grace_seconds
    moved = 0
    submitting = DueSet(svc.redis, keys.DUE_SUBMITTING)
    for job_id in members:
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


def resolve_unknown(svc: Services, members: list[str], now: float) -> int:
    """No callback claimed the job within the grace period: only now is a resubmit safe enough.

    A callback recorded in the meantime has bound its request to the job (the ``require``
    guard sees it) even if its apply task has not run: the job is then followed, not resent.
    A job whose attempts are spent fails instead (its last submit was given the same grace).
    """
    moved = 0
    budget = len(svc.settings.submit_retry_schedule)
    unknown = DueSet(svc.redis, keys.DUE_UNKNOWN)
    for job_id in members:
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


def drain_polls(svc: Services, members: list[str], now: float) -> int:
    return _send_each(members, enqueue.poll)


def drain_callbacks(svc: Services, members: list[str], now: float) -> int:
    return _send_each(members, enqueue.apply_callback)


def drain_deliveries(svc: Services, members: list[str], now: float) -> int:
    return _send_each(members, enqueue.deliver)


def expire_deadlines(svc: Services, members: list[str], now: float) -> int:
    failed = 0
    is_paused = pause.paused(svc.redis) is not None
    deadlines = DueSet(svc.redis, keys.DUE_DEADLINE)
    for job_id in members:
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
        if not result.applied:
            if result.previous in ACTIVE:  # it moved meanwhile: due again now, not at the lease
                deadlines.push_back([job_id], now)
            else:
                deadlines.remove(job_id)  # gone or terminal
        failed += result.applied
    return failed


@dataclass(frozen=True)
class Step:
    """One due set and what a batch does with the members it claimed (returns how many it
    handled)."""

    name: str
    key: str
    handle: Callable[[Services, list[str], float], int]


# Fan-out order: batches are enqueued (so, on one queue, started) in this order.
STEPS: tuple[Step, ...] = (
    Step("deadline", keys.DUE_DEADLINE, expire_deadlines),
    Step("callbacks", keys.DUE_CALLBACK, drain_callbacks),
    Step("submitting", keys.DUE_SUBMITTING, expire_submitting),
    Step("unknown", keys.DUE_UNKNOWN, resolve_unknown),
    Step("submits", keys.DUE_SUBMIT, drain_submits),
    Step("polls", keys.DUE_POLL, drain_polls),
    Step("deliveries", keys.DUE_DELIVERY, drain_deliveries),
)
STEPS_BY_NAME = {step.name: step for step in STEPS}


def run_batch(svc: Services, name: str, now: float | None = None) -> int:
    """One batch of one due set: claim up to ``reconcile_batch_size`` due members under a lease,
    then handle them. Safe to run any number of times at once, in any number of processes."""
    step = STEPS_BY_NAME[name]
    moment = clock.now() if now is None else now
    batch = svc.settings.reconcile_batch_size
    members = DueSet(svc.redis, step.key).claim(moment, batch, moment + LEASE_SECONDS)
    if not members:
        return 0
    with enqueue.one_producer():
        return step.handle(svc, members, moment)


def batches_needed(due: int, batch: int) -> int:
    return min(math.ceil(due / batch), MAX_BATCHES_PER_SET)


def fan_out(svc: Services, now: float | None = None) -> TickReport | None:
    """The beat tick: enqueue the batches that drain what is due now, per due set (counts are
    batches enqueued); None when another tick holds the lock. Cheap: one ZCOUNT per set."""
    moment = clock.now() if now is None else now
    lock = tick_lock(svc)
    if not lock.acquire(blocking=False):
        return None
    report = TickReport()
    batch = svc.settings.reconcile_batch_size
    try:
        with enqueue.one_producer():
            for step in STEPS:
                due = DueSet(svc.redis, step.key).count_due(moment)
                needed = batches_needed(due, batch)
                report.add(
                    step.name, sum(enqueue.reconcile_batch(step.name) for _ in range(needed))
                )
    finally:
        try:
            lock.release()  # redis-py's Lock: a Lua compare-and-delete on our token
        except LockError:
            log.warning("reconcile tick outlived its lock (%ss)", lock.timeout)
    return report


def tick_lock(svc: Services) -> redis.lock.Lock:
    """The lock one fan-out holds (non-blocking; it lapses by itself if its holder dies)."""
    seconds = max(svc.settings.reconcile_interval_seconds * 4, 10)  # Lock sets PX int(s * 1000)
    return redis.lock.Lock(svc.redis, LOCK_KEY, timeout=seconds, blocking=False)
