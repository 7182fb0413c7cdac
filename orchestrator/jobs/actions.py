"""What operators (and clients, for cancel) can do to a job: one implementation behind the API,
the CLI and the console, each action written to the job's timeline and to the audit log.
Redelivering outbound events (which replays them through delivery) is in
:mod:`webhooks.outbound.redeliver`, above both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.core import budgets, clock, enqueue
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.services import Services
from orchestrator.jobs import lifecycle
from orchestrator.jobs.audit import audit as audit
from orchestrator.jobs.audit import audit_log as audit_log
from orchestrator.jobs.state import (
    ACTIVE,
    ATTEMPT_TOKEN,
    CHARGE_RISK,
    GEN_ATTEMPTS,
    GENERATION,
    IN_SUBMIT,
    MAY_BE_CHARGED,
    PUBLIC_STATUS,
    RETIRED,
    UPSTREAM_RECEIVED_AT,
    JobState,
)
from orchestrator.jobs.store import JobFilter, index_for

BULK_LIMIT = 500  # jobs or events one bulk action touches; run it again for more
_BULK_PAGES = 20  # pages of the job list a bulk selection may read
_CAS_TRIES = 5


class Refusal(StrEnum):
    """Why an action was refused, as an error code: the CLI's exit status and its ``--json``
    error follow it (``not_found`` is exit 3, the others are refusals, exit 4)."""

    NOT_FOUND = "not_found"
    NOT_CANCELABLE = "not_cancelable"
    NOT_RETRYABLE = "not_retryable"
    NOT_POLLABLE = "not_pollable"
    NEEDS_CONFIRMATION = "needs_confirmation"
    CONFLICT = "conflict"  # the job changed under the action: try again


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    status: str | None = None
    data: dict[str, Any] | None = None
    refusal: Refusal | None = None  # set when not ok


def cancel(svc: Services, job_id: str, actor: str) -> ActionResult:
    for _ in range(_CAS_TRIES):
        state = svc.jobs.state_of(job_id)
        if state is None:
            return ActionResult(False, "no such job", refusal=Refusal.NOT_FOUND)
        if state not in ACTIVE:
            return ActionResult(
                False,
                f"the job is already {PUBLIC_STATUS[state]}",
                PUBLIC_STATUS[state],
                refusal=Refusal.NOT_CANCELABLE,
            )
        error = {"code": ErrorCode.CANCELED, "message": f"Canceled by {actor}"}
        fields: dict[str, Any] = {"error": error}
        if state in IN_SUBMIT:  # canceled mid-submit: Pixazo may have the job all the same
            fields.update(MAY_BE_CHARGED)
        result = lifecycle.move(
            svc,
            job_id,
            expected=[state],
            to=JobState.CANCELED,
            fields=fields,
            timeline={"reason": "canceled", "actor": actor},
            emit=True,
        )
        if result.applied:
            audit(svc, actor, "cancel", job_id)
            return ActionResult(True, "canceled", "canceled")
    return ActionResult(False, "the job kept changing; try again", refusal=Refusal.CONFLICT)


def may_be_charged(raw: Mapping[str, str]) -> bool:
    """Pixazo may have charged this job already: any submit of it was accepted or had an
    unknown outcome, or Pixazo called back about it. A resubmit may then be a second charge."""
    return bool(
        raw.get(CHARGE_RISK) == "1" or raw.get("request_id") or JobState(raw["status"]) in IN_SUBMIT
    )


def retry(svc: Services, job_id: str, actor: str, confirm_charge: bool = False) -> ActionResult:
    """Resubmit a failed job (or one stuck with an unknown submit outcome), as a new generation.

    A retry starts a fresh attempt budget and gets its own events. A job Pixazo may already
    have charged needs ``confirm_charge``: without it nothing is sent and the answer says why.
    The retry commits the job's cost to its client's budget again, in the month of the retry
    and with the move itself; operators are trusted, so it may go over the budget, and the
    timeline says so when it does.
    """
    raw = svc.jobs.get_raw(job_id)
    if raw is None:
        return ActionResult(False, "no such job", refusal=Refusal.NOT_FOUND)
    state = JobState(raw["status"])
    if state not in (JobState.FAILED, JobState.SUBMIT_UNKNOWN):
        return ActionResult(
            False,
            f"only failed jobs can be retried (this one is {state})",
            PUBLIC_STATUS[state],
            refusal=Refusal.NOT_RETRYABLE,
        )
    if may_be_charged(raw) and not confirm_charge:
        return ActionResult(
            False,
            "this job may already have been charged by Pixazo; a resubmit is a second charge "
            "(confirm to proceed)",
            PUBLIC_STATUS[state],
            {"needs_confirmation": True, "request_id": raw.get("request_id") or None},
            Refusal.NEEDS_CONFIRMATION,
        )
    now = clock.now()
    cost = raw.get("estimated_cost_usd") or ""
    commit = budgets.commit_for(raw["client_id"], float(cost) if cost else None, now)
    over = _over_budget(svc, commit)
    result = svc.states.transition(
        job_id,
        expected=[state],
        to=JobState.QUEUED,
        fields={
            "error": None,
            "output": None,
            "upstream_status": None,
            UPSTREAM_RECEIVED_AT: None,  # the new generation's event lag starts afresh
            "request_id": None,
            ATTEMPT_TOKEN: None,
            GEN_ATTEMPTS: "0",
            RETIRED: _retired_with(raw),
            "indexed_ms": str(int(now * 1000)),
        },
        incr=(GENERATION,),
        due_at=now,
        deadline_at=now + svc.settings.job_deadline_seconds,
        timeline={
            "reason": "operator retry",
            "actor": actor,
            "previous_request_id": raw.get("request_id") or None,
            "confirmed_charge": confirm_charge,
            "budget_committed_usd": budgets.to_usd(commit.micros or 0),
            **({"over_budget": True} if over else {}),
        },
        # What was checked above must still hold: the same generation, no new request bound.
        require={f: raw.get(f, "") for f in (GENERATION, "request_id", RETIRED)},
        commit=commit,
    )
    if not result.applied:
        return ActionResult(
            False, "the job changed meanwhile; reload and try again", refusal=Refusal.CONFLICT
        )
    enqueue.submit(job_id)
    owner = svc.clients.get(raw["client_id"])
    if owner is not None:
        budgets.warn_if_near_now(svc.redis, owner.id, owner.budget_micros, commit.period)
    audit(svc, actor, "retry", job_id, raw.get("request_id") or "")
    return ActionResult(True, "queued for resubmission", "queued")


def _over_budget(svc: Services, commit: budgets.Commit) -> bool:
    """Whether committing would take the client over its budget (allowed for a retry, and
    recorded on the timeline)."""
    client = svc.clients.get(commit.client_id)
    if client is None or client.budget_micros is None:
        return False
    committed = budgets.committed_micros(svc.redis, commit.client_id, commit.period)
    return committed + (commit.micros or 0) > client.budget_micros


def _retired_with(raw: Mapping[str, str]) -> list[str]:
    """The job's replaced Pixazo requests: their late callbacks must not undo a retry."""
    retired: list[str] = json.loads(raw.get(RETIRED) or "[]")
    if raw.get("request_id"):
        retired.append(raw["request_id"])
    return retired


def repoll(svc: Services, job_id: str, actor: str) -> ActionResult:
    state = svc.jobs.state_of(job_id)
    if state is None:
        return ActionResult(False, "no such job", refusal=Refusal.NOT_FOUND)
    if state not in (JobState.SUBMITTED, JobState.PROCESSING):
        return ActionResult(
            False,
            f"only submitted jobs can be polled (this one is {state})",
            refusal=Refusal.NOT_POLLABLE,
        )
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "repoll", "actor": actor})
    enqueue.poll(job_id)
    audit(svc, actor, "repoll", job_id)
    return ActionResult(True, "poll requested")


def job_event_ids(svc: Services, job_id: str) -> dict[str, str]:
    return svc.jobs.event_ids(job_id)


def failed_jobs(
    svc: Services,
    error_code: str | None,
    client_id: str | None = None,
    model: str | None = None,
    limit: int = BULK_LIMIT,
) -> list[dict[str, str]]:
    """Failed jobs (raw), newest first, optionally with one error code, client or model."""
    flt = JobFilter(status="failed", client_id=client_id, model=model, error_code=error_code)
    index, keep = index_for(flt, svc.redis)
    out: list[dict[str, str]] = []
    cursor = None
    for _ in range(_BULK_PAGES):
        page = svc.jobs.list_range(index, limit - len(out), cursor, keep=keep)
        out += [raw for raw in svc.jobs.get_many(page.ids) if raw]
        cursor = page.next_cursor
        if cursor is None or len(out) >= limit:
            break
    return out[:limit]


def retry_failed(
    svc: Services,
    actor: str,
    error_code: str | None,
    client_id: str | None = None,
    model: str | None = None,
    confirm_charge: bool = False,
    limit: int = BULK_LIMIT,
) -> ActionResult:
    """Resubmit the failed jobs of a selection; any that Pixazo accepted before need
    ``confirm_charge``, because each of their resubmits is a second charge."""
    jobs = failed_jobs(svc, error_code, client_id, model, limit)
    charged = sum(1 for raw in jobs if may_be_charged(raw))
    if charged and not confirm_charge:
        return ActionResult(
            False,
            f"{charged} of these {len(jobs)} job(s) may have been charged by Pixazo: "
            "resubmitting them may be a second charge each (confirm to proceed)",
            data={"needs_confirmation": True, "count": len(jobs), "charged": charged},
            refusal=Refusal.NEEDS_CONFIRMATION,
        )
    done = [raw["id"] for raw in jobs if retry(svc, raw["id"], actor, confirm_charge).ok]
    target = " ".join(f"{k}={v}" for k, v in (("client", client_id), ("model", model)) if v)
    audit(svc, actor, "bulk_retry", target or "all clients", f"{error_code}: {len(done)} job(s)")
    return ActionResult(
        True, f"{len(done)} failed job(s) queued for resubmission", data={"count": len(done)}
    )
