"""What an upstream status (from a callback or a poll) does to a job.

Callbacks and polls carry the same body, so both end here. The state machine makes the result
forward-only: a status the job has already passed is recorded on the timeline and ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.client import Pipeline

from orchestrator.core import clock, keys
from orchestrator.core.due import DueSet
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.services import Services
from orchestrator.jobs import lifecycle
from orchestrator.jobs.state import (
    ACTIVE,
    GENERATION,
    MAY_BE_CHARGED,
    RETIRED,
    UPSTREAM_RECEIVED_AT,
    JobState,
)

S = JobState
# The upstream status -> (states a job may be in to take it, state it moves to).
_BEFORE_SUBMITTED = frozenset({S.QUEUED, S.SUBMITTING, S.SUBMIT_UNKNOWN})
_MOVES: Mapping[str, tuple[frozenset[JobState], JobState]] = {
    "QUEUED": (_BEFORE_SUBMITTED, S.SUBMITTED),
    "PROCESSING": (_BEFORE_SUBMITTED | {S.SUBMITTED}, S.PROCESSING),
    "COMPLETED": (ACTIVE, S.COMPLETED),
    "FAILED": (ACTIVE, S.FAILED),
    "ERROR": (ACTIVE, S.FAILED),
}
_ERROR_CODES = {"FAILED": ErrorCode.UPSTREAM_FAILED, "ERROR": ErrorCode.UPSTREAM_ERROR}
_TERMINAL_UPSTREAM = frozenset({"COMPLETED", "FAILED", "ERROR"})
_READ_TRIES = 3
# The job hash fields the decision reads: a caller that has just read them (the callback's
# record) passes them in, and the first read is saved.
DECISION_FIELDS = ("status", "request_id", RETIRED, GENERATION, "client_id", "model")


@dataclass(frozen=True)
class Applied:
    moved: bool
    state: JobState | None
    event_id: str | None = None
    ignored_reason: str = ""


def _fields(status: Mapping[str, Any], received_at: float) -> dict[str, Any]:
    upstream = status["status"]
    fields: dict[str, Any] = {"request_id": status["request_id"], "upstream_status": upstream}
    if upstream in _TERMINAL_UPSTREAM:
        fields[UPSTREAM_RECEIVED_AT] = repr(received_at)
    if upstream == "COMPLETED":
        output = status.get("output") or {"media_url": [], "media_type": "video/mp4"}
        fields["output"] = {
            "media_url": list(output.get("media_url") or []),
            "media_type": output.get("media_type") or "video/mp4",
        }
        fields["error"] = None
    elif upstream in _ERROR_CODES:
        message = status.get("error") or f"Pixazo reported {upstream}"
        fields["error"] = {"code": _ERROR_CODES[upstream], "message": str(message)}
    return fields


def apply_upstream(
    svc: Services,
    job_id: str,
    status: Mapping[str, Any],
    source: str,
    stuck_after: float,
    received_at: float | None = None,
    job: Mapping[str, str] | None = None,
    then: Callable[[Pipeline], object] | None = None,
) -> Applied:
    """Apply a parsed status body to the job; enqueue the event delivery it creates.

    The decision rests on the job as read; the move requires that what it rested on (the
    generation, the requests a retry retired) still holds, and reads again when it does not.
    ``received_at`` is when the status reached us (a callback's receipt; now for a poll).
    ``job`` is the job's :data:`DECISION_FIELDS` as the caller just read them (else the first
    decision reads the job). ``then`` queues the caller's own bookkeeping (the callback inbox's
    done) in the transaction that ends the apply, whatever its outcome, so that the request
    binding and it cost one round trip; it is not run when the apply raises.
    """
    received = clock.now() if received_at is None else received_at
    applied = Applied(False, None, ignored_reason="the job kept changing")
    for _ in range(_READ_TRIES):
        raw = dict(job) if job is not None else svc.jobs.get_raw(job_id)
        job = None  # a guarded move failed: what was read no longer holds, read again
        outcome = _apply_once(svc, job_id, raw, status, source, stuck_after, received)
        if outcome is not None:
            applied = outcome
            break
    pipe = svc.redis.pipeline(transaction=then is not None)
    if applied.moved:
        svc.jobs.bind_request(status["request_id"], job_id, svc.request_binding_seconds, pipe)
    if then is not None:
        then(pipe)
    if len(pipe):
        pipe.execute()
    return applied


def _apply_once(
    svc: Services,
    job_id: str,
    raw: Mapping[str, str] | None,
    status: Mapping[str, Any],
    source: str,
    stuck_after: float,
    received_at: float,
) -> Applied | None:
    upstream = status["status"]
    if raw is None:
        return Applied(False, None, ignored_reason="job not found")
    svc.states.remember(job_id, raw.get("client_id", ""), raw.get("model", ""))
    bound = raw.get("request_id") or ""
    retired = json.loads(raw.get(RETIRED) or "[]")
    other = (bound and bound != status["request_id"]) or status["request_id"] in retired
    # Another request of this job (an earlier submit whose outcome was unknown, or one an
    # operator's retry replaced) may still finish it with a video; its failure or progress must
    # not touch the request the job is now bound to.
    if other and upstream != "COMPLETED":
        return _ignore(
            svc, job_id, JobState(raw["status"]), status, source, "another request of this job"
        )
    expected, target = _MOVES[upstream]
    emit = target in (S.COMPLETED, S.FAILED) or _wants_progress(svc, raw, target)
    result = lifecycle.move(
        svc,
        job_id,
        expected=expected & ACTIVE,
        to=target,
        fields={**_fields(status, received_at), **MAY_BE_CHARGED},
        due_at=clock.now() + stuck_after,
        timeline={
            "source": source,
            "upstream_status": upstream,
            "request_id": status["request_id"],
        },
        emit=emit,
        require={GENERATION: raw.get(GENERATION, ""), RETIRED: raw.get(RETIRED, "")},
    )
    if result.guarded:
        return None
    if not result.applied:
        if result.previous is None:
            return Applied(False, None, ignored_reason="job not found")
        if result.previous in (S.SUBMITTED, S.PROCESSING):
            # Sync-mode progress for a job already there: it is alive, so poll it later.
            DueSet(svc.redis, keys.DUE_POLL).push_back([job_id], clock.now() + stuck_after)
        return _ignore(svc, job_id, result.previous, status, source, "already past this status")
    return Applied(True, target, result.event_id)  # its request is bound by apply_upstream


def _wants_progress(svc: Services, raw: Mapping[str, str], target: JobState) -> bool:
    if target is not S.PROCESSING:
        return False
    client = svc.clients.get(raw["client_id"])
    return client is not None and "job.processing" in client.event_types


def _ignore(
    svc: Services,
    job_id: str,
    state: JobState | None,
    status: Mapping[str, Any],
    source: str,
    reason: str,
) -> Applied:
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "ignored",
            "source": source,
            "upstream_status": status["status"],
            "request_id": status["request_id"],
            "reason": reason,
        },
    )
    return Applied(False, state, ignored_reason=reason)
