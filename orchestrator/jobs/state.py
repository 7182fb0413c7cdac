"""The job state machine, written down once.

Every change of a job's state goes through :func:`transition`, a compare-and-set performed by
one Lua script: it checks that the job is in one of the states the caller expects, moves it,
keeps the status indexes and due-time sets in step, appends to the timeline and, when asked,
writes the downstream event into the outbox, all atomically. Celery delivers tasks at least once,
so a task that finds the job elsewhere than it expects simply stops.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis

from orchestrator.core import budgets, clock, keys, lua, metrics
from orchestrator.core.ids import created_at, new_id
from orchestrator.core.records import JobState as JobState  # re-exported: defined in core
from orchestrator.jobs import timeline as timelines

S = JobState
TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELED})
ACTIVE = frozenset(JobState) - TERMINAL

ALLOWED: Mapping[JobState, frozenset[JobState]] = {
    S.QUEUED: frozenset(
        {S.SUBMITTING, S.SUBMITTED, S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED}
    ),
    S.SUBMITTING: frozenset(
        {S.QUEUED, S.SUBMIT_UNKNOWN, S.SUBMITTED, S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED}
    ),
    S.SUBMIT_UNKNOWN: frozenset(
        {S.QUEUED, S.SUBMITTED, S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED}
    ),
    S.SUBMITTED: frozenset({S.PROCESSING, S.COMPLETED, S.FAILED, S.CANCELED}),
    S.PROCESSING: frozenset({S.COMPLETED, S.FAILED, S.CANCELED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.QUEUED}),  # only an operator's retry leaves a failed job
    S.CANCELED: frozenset(),
}

# What clients see: the sub-states of a submit are still "queued" from the outside.
PUBLIC_STATUS: Mapping[JobState, str] = {
    S.QUEUED: "queued",
    S.SUBMITTING: "queued",
    S.SUBMIT_UNKNOWN: "queued",
    S.SUBMITTED: "submitted",
    S.PROCESSING: "processing",
    S.COMPLETED: "completed",
    S.FAILED: "failed",
    S.CANCELED: "canceled",
}
PUBLIC_STATUSES = ("queued", "submitted", "processing", "completed", "failed", "canceled")

# The due-time set a job sits in while in each state (terminal states sit in none).
STATE_DUE_SET: Mapping[JobState, str] = {
    S.QUEUED: keys.DUE_SUBMIT,
    S.SUBMITTING: keys.DUE_SUBMITTING,
    S.SUBMIT_UNKNOWN: keys.DUE_UNKNOWN,
    S.SUBMITTED: keys.DUE_POLL,
    S.PROCESSING: keys.DUE_POLL,
}

# Job hash fields the money-safety rules read (the rest are the job object's own).
CHARGE_RISK = "charge_risk"  # "1" once Pixazo may have charged the job: never cleared
ATTEMPT_TOKEN = "attempt_token"  # identifies the submit attempt that holds the job
GENERATION = "generation"  # 1 at intake, +1 per operator retry; events are per generation
RETIRED = "retired_request_ids"  # JSON list: requests a retry replaced (their news is stale)
GEN_ATTEMPTS = "gen_attempts"  # submits in this generation: the retry budget's count
# When Pixazo's terminal status reached us (unix s): the event lag metric counts from it to the
# consumer's 2xx; written with the terminal move, so the event's snapshot carries it.
UPSTREAM_RECEIVED_AT = "upstream_received_at"
# Fields that only a job in flight needs, deleted by the move into a terminal state so that a
# finished job does not keep them for its retention (issue 12): the attempt that held the job
# and the submits of this generation. An operator's retry writes both afresh (actions.retry), and
# a late submit answer is settled by the job's state and request, not by them.
IN_FLIGHT_ONLY: Mapping[str, None] = {ATTEMPT_TOKEN: None, GEN_ATTEMPTS: None}
# Fields a terminal move writes for its event's snapshot only (the event lag counts from it):
# transition.lua deletes them from the job hash once the snapshot is taken.
SNAPSHOT_ONLY = (UPSTREAM_RECEIVED_AT,)
MAY_BE_CHARGED = {CHARGE_RISK: "1"}
UNCLAIMED = {"request_id": ""}  # guard: no request of Pixazo's is bound to the job yet
IN_SUBMIT = frozenset({S.SUBMITTING, S.SUBMIT_UNKNOWN})  # Pixazo may have what was sent


def event_key(event_type: str, generation: str | int) -> str:
    """The name of one generation's event of one type among a job's events (JobStore.event_ids)."""
    return f"{event_type}:{generation}"


# A job's event ids are fields of its own hash, EVENT_PREFIX + event_key (issue 12: one key
# fewer per job); a job made before that keeps them in ``job:{id}:events`` (still read).
EVENT_PREFIX = "e:"


def event_field(event_type: str, generation: str | int) -> str:
    """The job hash field that holds one generation's event id of one type."""
    return EVENT_PREFIX + event_key(event_type, generation)


EVENT_FOR_STATE: Mapping[JobState, str] = {
    S.COMPLETED: "job.completed",
    S.FAILED: "job.failed",
    S.CANCELED: "job.canceled",
    S.PROCESSING: "job.processing",
}


@dataclass(frozen=True)
class TransitionResult:
    applied: bool
    previous: JobState | None  # None when the job does not exist
    event_created: bool = False
    event_id: str | None = None
    guarded: bool = False  # the state matched but a required field did not


_GUARD_FAILED = 2
_STALE_BUDGET = 3  # the job's budget month changed since it was read: read it again
_BUDGET_READS = 3
_RELEASE_STATES = frozenset(JobState(s) for s in budgets.RELEASE_STATES)
# Jobs whose (client_id, model) a StateMachine remembers: the two never change for a job, and
# they name the index keys transition.lua is passed. Bounded, so a long-lived worker stays small.
IDENTITY_CACHE_SIZE = 4096


def _script_config(retention_seconds: int) -> str:
    """The state tables transition.lua reads; due sets are named by their offset in
    ``keys.JOB_DUE_SETS`` (the script is passed the sets themselves in KEYS)."""
    return json.dumps(
        {
            "public": {s.value: PUBLIC_STATUS[s] for s in JobState},
            "due": {s.value: keys.JOB_DUE_SETS.index(STATE_DUE_SET[s]) for s in STATE_DUE_SET},
            "terminal": {s.value: True for s in TERMINAL},
            "n_due_sets": len(keys.JOB_DUE_SETS),
            "retention": retention_seconds,
            "event_prefix": EVENT_PREFIX,
            "timeline_field": timelines.FIELD,
            "snapshot_only": list(SNAPSHOT_ONLY),
            "budget": {**budgets.release_config(), "risk": CHARGE_RISK},
        }
    )


def transition_keys(
    job_id: str, client_id: str, model: str, event_id: str, public: Sequence[str]
) -> list[str]:
    """KEYS of transition.lua (see its header), for the public statuses ``public``."""
    return [
        keys.job(job_id),
        keys.timeline(job_id),
        keys.job_events(job_id),
        keys.event(event_id),
        keys.DUE_DELIVERY,
        keys.DUE_DEADLINE,
        keys.ALL_JOBS,
        keys.client_index(client_id),
        keys.model_index(model),
        keys.client_model_index(client_id, model),
        *keys.JOB_DUE_SETS,
        *[
            name
            for status in public
            for name in (keys.status_index(status), keys.client_status_index(client_id, status))
        ],
    ]


class _IdentityCache:
    """A small LRU of job id -> (client_id, model), safe across a process's threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> tuple[str, str] | None:
        with self._lock:
            found = self._items.get(job_id)
            if found is not None:
                self._items.move_to_end(job_id)
            return found

    def put(self, job_id: str, identity: tuple[str, str]) -> None:
        with self._lock:
            self._items[job_id] = identity
            self._items.move_to_end(job_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class StateMachine:
    """Holds the registered script and the retention that terminal jobs get."""

    def __init__(self, r: redis.Redis, retention_seconds: int) -> None:
        self._redis = r
        self._script = r.register_script(lua.source("transition"))
        self._claim = r.register_script(lua.source("claim_request"))
        self._config = _script_config(retention_seconds)
        self._identities = _IdentityCache(IDENTITY_CACHE_SIZE)

    def remember(self, job_id: str, client_id: str, model: str) -> None:
        """A caller that has just read the job's client and model (they never change) spares
        the next transition of it the read that would find them."""
        if client_id and model:
            self._identities.put(job_id, (client_id, model))

    def _identity(self, job_id: str) -> tuple[str, str] | None:
        """The job's (client_id, model), which name its index keys; None if there is no job."""
        found = self._identities.get(job_id)
        if found is not None:
            return found
        status, client_id, model = cast(
            list[str | None], self._redis.hmget(keys.job(job_id), "status", "client_id", "model")
        )
        if status is None:  # transition.lua's test for "no job"
            return None
        if client_id is None or model is None:  # not a job intake made: do not remember it
            return client_id or "", model or ""
        found = (client_id, model)
        self._identities.put(job_id, found)
        return found

    def transition(
        self,
        job_id: str,
        *,
        expected: Iterable[JobState],
        to: JobState,
        fields: Mapping[str, Any] | None = None,
        due_at: float | None = None,
        timeline: Mapping[str, Any] | None = None,
        emit: bool = False,
        incr: Sequence[str] = (),
        now: float | None = None,
        deadline_at: float | None = None,
        require: Mapping[str, str] | None = None,
        commit: budgets.Commit | None = None,
    ) -> TransitionResult:
        """Move ``job_id`` to ``to`` if it is in one of ``expected``; tell whether it did.

        ``fields`` are written with the move (``None`` deletes a field); ``due_at`` is when the
        job is next due in the set its new state lives in; ``emit`` writes the state's
        downstream event into the outbox unless one of that type exists for the job already;
        ``deadline_at`` sets a new deadline (an operator's retry of a failed job); ``require``
        names fields that must hold these values ("" for absent) for the move to happen, which
        is how a submit's answer settles only the attempt that sent it. ``commit`` commits a
        job's cost to its client's budget with the move (an operator's retry); a move to
        failed or canceled releases the cost when Pixazo did not charge the job
        (:mod:`orchestrator.core.budgets`), in the same step.
        """
        expected = tuple(expected)
        for state in expected:
            if to not in ALLOWED[state]:
                raise ValueError(f"transition {state} -> {to} is not in the state machine")
        identity = self._identity(job_id)
        if identity is None:  # what the script answers for a missing job, without the script
            return TransitionResult(applied=False, previous=None)
        public = list(dict.fromkeys(PUBLIC_STATUS[s] for s in (*expected, to)))
        moment = clock.now() if now is None else now
        stamp = clock.iso(moment)
        entry = {"at": stamp, "type": "transition", **(timeline or {})}
        event_type = EVENT_FOR_STATE.get(to, "") if emit else ""
        event_id = new_id("evt", moment) if event_type else ""
        encoded = {k: (None if v is None else _encode(v)) for k, v in (fields or {}).items()}
        if to in TERMINAL:
            encoded = {**IN_FLIGHT_ONLY, **encoded}
        script_keys = transition_keys(job_id, *identity, event_id, public)
        for _ in range(_BUDGET_READS):
            budget_keys, budget_arg = self._budget_step(job_id, identity[0], to, commit)
            answer = self._run(
                script_keys + budget_keys,
                [
                    job_id,
                    ",".join(expected),
                    to.value,
                    repr(moment),
                    stamp,
                    json.dumps(encoded),
                    json.dumps(entry),
                    repr(moment if due_at is None else due_at),
                    event_type,
                    self._config,
                    ",".join(incr),
                    event_id,
                    "" if deadline_at is None else repr(deadline_at),
                    json.dumps(dict(require or {})),
                    ",".join(public),
                    budget_arg,
                ],
            )
            if answer[0] != _STALE_BUDGET:
                break
        applied, previous, created = answer
        prev = cast(str, previous)
        if applied == 1 and to in TERMINAL:  # the one move into a terminal state
            metrics.JOB_DURATION.observe(moment - created_at(job_id), identity[1], to.value)
            if created != 1:  # else the event's settling compacts, after its attempts
                timelines.compact(self._redis, job_id)
        return TransitionResult(
            applied=applied == 1,
            previous=JobState(prev) if prev else None,
            event_created=created == 1,
            event_id=event_id if created == 1 else None,
            guarded=applied == _GUARD_FAILED,
        )

    def _run(self, script_keys: list[str], args: list[Any]) -> list[Any]:
        return cast("list[Any]", self._script(keys=script_keys, args=args))

    def _budget_step(
        self, job_id: str, client_id: str, to: JobState, commit: budgets.Commit | None
    ) -> tuple[list[str], str]:
        """The budget counter key and transition.lua's ARGV[16] for this move: a commit, the
        month a release would subtract from (read from the job; the script checks it still
        holds), or nothing for a move that neither commits nor may release."""
        if commit is not None:
            step = {
                "commit": str(commit.micros or 0),
                "period": commit.period.name,
                "expire_at": commit.period.expire_at,
            }
            return [commit.key], json.dumps(step)
        if to not in _RELEASE_STATES:
            return [], ""
        period = cast("str | None", self._redis.hget(keys.job(job_id), budgets.JOB_PERIOD)) or ""
        counter = [keys.budget_committed(client_id, period)] if period else []
        return counter, json.dumps({"period": period})

    def claim_request(self, job_id: str, request_id: str, generation: str) -> bool:
        """Bind a request that answered a superseded attempt, if the job can still take it.

        Pixazo charged it either way: the job is marked as possibly charged, and a request it
        cannot take is retired so that only its video (never its failure) reaches the job.
        """
        return self._claim(keys=[keys.job(job_id)], args=[request_id, generation]) == 1


def _encode(value: Any) -> str:
    """Hash fields are strings: structures are stored as JSON, scalars as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))
