"""Submitting a job to Pixazo: at most one submit in flight per job, never a blind resend.

A submit starts with a compare-and-set queued -> submitting, so two deliveries of the same
Celery message cannot both reach Pixazo. Its outcome decides the next state:
accepted -> submitted; rejected -> failed; retryable -> queued again, due after a backoff;
402 -> queued, with submissions paused for everyone; unknown -> submit_unknown, where the job
waits for a callback on its own URL before a grace period allows a resubmit.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
from dataclasses import dataclass

import redis

from orchestrator.core import catalog, clock, keys, logcontext, metrics, tokens
from orchestrator.core.due import DueSet
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.services import Services
from orchestrator.jobs import lifecycle
from orchestrator.jobs.state import (
    ATTEMPT_TOKEN,
    GEN_ATTEMPTS,
    GENERATION,
    MAY_BE_CHARGED,
    UNCLAIMED,
    JobState,
)
from orchestrator.upstream import pause
from orchestrator.upstream.limiter import SubmitLimiter
from orchestrator.upstream.pixazo import CONNECT_TIMEOUT_SECONDS, Outcome, SubmitResult

log = logging.getLogger(__name__)
S = JobState
# A submit holds the job in ``submitting`` for at most connect + read timeout and two Redis
# round trips; past that plus this margin, beat calls its outcome unknown (worker lost).
SUBMITTING_MARGIN_SECONDS = CONNECT_TIMEOUT_SECONDS + 5.0
UNAVAILABLE = ErrorCode.UPSTREAM_UNAVAILABLE


def backoff_seconds(schedule: tuple[int, ...], attempt: int, retry_after: float | None) -> float:
    """Full jitter over the schedule's step for this attempt; Retry-After is a floor."""
    step = schedule[min(max(attempt, 1), len(schedule)) - 1]
    delay = random.uniform(0, step)
    return max(delay, retry_after or 0.0)


def submit(svc: Services, job_id: str) -> str:
    """Run one submit of ``job_id`` if it is due; returns a word for logs and tests."""
    state, gate = _read_gate(svc, job_id)
    if state is not S.QUEUED:
        return "skipped"
    now = clock.now()
    submits = DueSet(svc.redis, keys.DUE_SUBMIT)
    if gate.holds(job_id):
        submits.push_back([job_id], now + svc.settings.balance_probe_seconds)
        return "paused"
    lease, wait = svc.limiter.acquire(now)
    if lease is None:
        submits.push_back([job_id], now + wait)
        return "throttled"
    held = _Lease(svc.limiter, lease)
    try:
        return _submit_holding_lease(svc, job_id, held)
    finally:
        held.give_back()


def _read_gate(svc: Services, job_id: str) -> tuple[JobState | None, pause.Gate]:
    """The job's state and the pause in one round trip; the job's client and model (which never
    change) come with them, so that the claim does not read them again."""
    pipe = svc.redis.pipeline(transaction=False)
    pipe.hmget(keys.job(job_id), "status", "client_id", "model")
    pause.queue_gate_read(pipe)
    (status, client_id, model), *gate = pipe.execute()
    svc.states.remember(job_id, client_id or "", model or "")
    return (JobState(status) if status else None), pause.Gate.from_replies(gate)


class _Lease:
    """A limiter lease, given back once: with the answer's records, or at the end of the submit
    when something failed before them (a lease nobody gives back lapses by itself)."""

    def __init__(self, limiter: SubmitLimiter, lease: str) -> None:
        self._limiter = limiter
        self._lease: str | None = lease

    def queue_give_back(self, pipe: redis.client.Pipeline) -> None:
        if self._lease is not None:
            self._limiter.release(self._lease, pipe)

    def given_back(self) -> None:
        self._lease = None

    def give_back(self) -> None:
        if self._lease is not None:
            self._limiter.release(self._lease)
            self._lease = None


def _submit_holding_lease(svc: Services, job_id: str, lease: _Lease) -> str:
    settings = svc.settings
    now = clock.now()
    token = secrets.token_hex(8)
    claimed = svc.states.transition(
        job_id,
        expected=[S.QUEUED],
        to=S.SUBMITTING,
        fields={ATTEMPT_TOKEN: token},
        due_at=now + settings.submit_timeout_seconds + SUBMITTING_MARGIN_SECONDS,
        timeline={"reason": "submit"},
        incr=("attempts", GEN_ATTEMPTS),
        require=UNCLAIMED,
    )
    if claimed.guarded:
        return follow_claimed(svc, job_id, S.QUEUED)
    if not claimed.applied:
        return "skipped"
    raw = svc.jobs.get_raw(job_id)
    assert raw is not None
    logcontext.bind(job_id=job_id, client_id=raw.get("client_id"))
    spec = catalog.get_model(raw["model"])
    assert spec is not None
    webhook_url = tokens.callback_url(settings.public_base_url, settings.secret_key, job_id)
    result = svc.pixazo.submit(
        spec.submit_path,
        json.loads(raw["input"]),
        webhook_url,
        raw.get("webhook_mode") or "terminal",
    )
    metrics.SUBMITS.inc(spec.id, result.outcome.value)
    attempt = Attempt(token, raw.get(GENERATION) or "1", int(raw.get(GEN_ATTEMPTS) or 1))
    gate = _record_attempt(svc, job_id, int(raw.get("attempts") or 1), result, lease)
    return _settle(svc, job_id, attempt, result, gate)


@dataclass(frozen=True)
class Attempt:
    """Which submit an answer belongs to: only that attempt's claim may be settled by it."""

    token: str
    generation: str
    number: int  # within the generation: the retry budget counts these

    @property
    def guard(self) -> dict[str, str]:
        return {ATTEMPT_TOKEN: self.token}


def follow_claimed(svc: Services, job_id: str, state: JobState) -> str:
    """A callback recorded while the job waited bound its request: Pixazo has the job, so it is
    followed (polled), never submitted again."""
    svc.states.transition(
        job_id,
        expected=[state],
        to=S.SUBMITTED,
        due_at=clock.now() + svc.settings.stuck_after_seconds,
        timeline={"reason": "a callback already claimed the job: not resubmitting"},
    )
    return "claimed"


def _record_attempt(
    svc: Services, job_id: str, attempt: int, result: SubmitResult, lease: _Lease
) -> pause.Gate:
    """Everything the answer records before the job moves, in one round trip: the timeline
    entry, the console's answer counters, the request's binding (before the move, so that a
    callback finds the job as soon as it is submitted), the lease; and the pause, read back for
    the move to decide on."""
    pipe = svc.redis.pipeline(transaction=False)
    entry = {
        "type": "submit_attempt",
        "attempt": attempt,
        "outcome": result.outcome.value,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
        "request_id": result.request_id,
        "answer": result.answer or result.message,
    }
    timeline_written = svc.jobs.queue_timeline_entry(pipe, job_id, entry)
    pause.record_answer(pipe, result.http_status, result.latency_ms, result.message)
    if result.outcome is Outcome.ACCEPTED and result.request_id is not None:
        svc.jobs.bind_request(result.request_id, job_id, svc.request_binding_seconds, pipe=pipe)
    lease.queue_give_back(pipe)
    pause.queue_gate_read(pipe)
    first, *rest = pipe.execute(raise_on_error=False)
    for reply in rest:
        if isinstance(reply, Exception):
            raise reply
    lease.given_back()
    timeline_written(first)
    return pause.Gate.from_replies(rest[-pause.GATE_REPLIES :])


def _fail(svc: Services, job_id: str, attempt: Attempt, code: ErrorCode, message: str) -> str:
    lifecycle.move(
        svc,
        job_id,
        expected=[S.SUBMITTING],
        to=S.FAILED,
        fields={"error": {"code": code, "message": message}},
        timeline={"reason": code},
        emit=True,
        require=attempt.guard,
    )
    return code


def _requeue(svc: Services, job_id: str, attempt: Attempt, delay: float, reason: str) -> None:
    svc.states.transition(
        job_id,
        expected=[S.SUBMITTING],
        to=S.QUEUED,
        due_at=clock.now() + delay,
        timeline={"reason": reason, "retry_in_seconds": round(delay, 3)},
        require=attempt.guard,
    )


def _accept(svc: Services, job_id: str, attempt: Attempt, request_id: str, gate: pause.Gate) -> str:
    """The request is bound already (_record_attempt); the job moves to submitted."""
    settings = svc.settings
    if pause.auto_resumes(gate.pause):
        # Any accepted submit proves the balance is back, not only the probe's.
        pause.resume(svc.redis, by="an accepted submit")
    moved = svc.states.transition(
        job_id,
        expected=[S.SUBMITTING, S.SUBMIT_UNKNOWN],
        to=S.SUBMITTED,
        fields={"request_id": request_id, "upstream_status": "QUEUED", **MAY_BE_CHARGED},
        due_at=clock.now() + settings.stuck_after_seconds,
        timeline={"reason": "accepted", "request_id": request_id},
        require=attempt.guard,
    )
    if moved.applied:
        return "submitted"
    # The answer came back to an attempt that no longer holds the job (beat called it lost,
    # the deadline failed it, an operator retried it): Pixazo charged it all the same.
    bound = svc.states.claim_request(job_id, request_id, attempt.generation)
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "late_answer",
            "request_id": request_id,
            "outcome": "claimed the job" if bound else "retired: the job had moved on",
        },
    )
    return "late"


def _settle(
    svc: Services, job_id: str, attempt: Attempt, result: SubmitResult, gate: pause.Gate
) -> str:
    settings = svc.settings
    outcome = result.outcome
    if outcome is Outcome.ACCEPTED:
        assert result.request_id is not None
        return _accept(svc, job_id, attempt, result.request_id, gate)
    if outcome is Outcome.REJECTED:
        message = result.message or "Pixazo rejected the request"
        return _fail(svc, job_id, attempt, ErrorCode.UPSTREAM_REJECTED, message)
    if outcome is Outcome.AUTH:
        return _fail(
            svc, job_id, attempt, ErrorCode.UPSTREAM_AUTH, "Pixazo refused our credentials"
        )
    if outcome is Outcome.INSUFFICIENT_BALANCE:
        pause.pause(svc.redis, pause.BALANCE_REASON, by="pixazo 402")
        _requeue(svc, job_id, attempt, settings.balance_probe_seconds, "insufficient_balance")
        return "paused"
    if outcome is Outcome.UNKNOWN:
        svc.states.transition(
            job_id,
            expected=[S.SUBMITTING],
            to=S.SUBMIT_UNKNOWN,
            fields=MAY_BE_CHARGED,
            due_at=clock.now() + settings.unknown_grace_seconds,
            timeline={"reason": f"outcome unknown ({result.message}); waiting for a callback"},
            require=attempt.guard,
        )
        return "unknown"
    if attempt.number >= len(settings.submit_retry_schedule):
        return _fail(svc, job_id, attempt, UNAVAILABLE, f"gave up after {attempt.number} attempts")
    delay = backoff_seconds(settings.submit_retry_schedule, attempt.number, result.retry_after)
    _requeue(svc, job_id, attempt, delay, f"retryable ({result.http_status or result.message})")
    return "retry"
