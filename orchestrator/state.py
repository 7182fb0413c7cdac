"""The job state machine, written down once.

Every change of a job's state goes through :func:`transition`, a compare-and-set performed by
one Lua script: it checks that the job is in one of the states the caller expects, moves it,
keeps the status indexes and due-time sets in step, appends to the timeline and, when asked,
writes the downstream event into the outbox, all atomically. Celery delivers tasks at least once,
so a task that finds the job elsewhere than it expects simply stops.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from orchestrator import clock, keys
from orchestrator.ids import new_id


class JobState(StrEnum):
    QUEUED = "queued"
    SUBMITTING = "submitting"  # a worker holds the submit; Pixazo may or may not have it
    SUBMIT_UNKNOWN = "submit_unknown"  # the submit's outcome is unknown: wait, never resend blindly
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


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

EVENT_FOR_STATE: Mapping[JobState, str] = {
    S.COMPLETED: "job.completed",
    S.FAILED: "job.failed",
    S.CANCELED: "job.canceled",
    S.PROCESSING: "job.processing",
}

_TRANSITION_LUA = """
local job, tl, evts = KEYS[1], KEYS[2], KEYS[3]
local id, new, now, now_iso = ARGV[1], ARGV[3], ARGV[4], ARGV[5]
local cur = redis.call('HGET', job, 'status')
if not cur then return {-1, '', 0} end
local expected = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then expected = true end end
if not expected then return {0, cur, 0} end
local cfg = cjson.decode(ARGV[10])
for k, v in pairs(cjson.decode(ARGV[6])) do
  if v == cjson.null then redis.call('HDEL', job, k) else redis.call('HSET', job, k, v) end
end
redis.call('HSET', job, 'status', new, 'updated_at', now_iso)
if ARGV[11] ~= '' then redis.call('HINCRBY', job, ARGV[11], 1) end
local created = redis.call('HGET', job, 'created_ms')
local client = redis.call('HGET', job, 'client_id')
local old_pub, new_pub = cfg.public[cur], cfg.public[new]
if old_pub ~= new_pub then
  redis.call('ZREM', 'idx:status:' .. old_pub, id)
  redis.call('ZADD', 'idx:status:' .. new_pub, created, id)
  redis.call('ZREM', 'idx:client:' .. client .. ':status:' .. old_pub, id)
  redis.call('ZADD', 'idx:client:' .. client .. ':status:' .. new_pub, created, id)
end
local old_set, new_set = cfg.due[cur], cfg.due[new]
if old_set and old_set ~= new_set then redis.call('ZREM', old_set, id) end
if new_set then redis.call('ZADD', new_set, ARGV[8], id) end
if cfg.terminal[new] then
  for _, set in ipairs(cfg.job_due_sets) do redis.call('ZREM', set, id) end
  redis.call('HSET', job, 'completed_at', now_iso)
elseif cfg.terminal[cur] then
  for _, k in ipairs({job, tl, evts}) do redis.call('PERSIST', k) end
  redis.call('HDEL', job, 'completed_at')
end
if ARGV[13] ~= '' then redis.call('ZADD', cfg.deadline_set, ARGV[13], id) end
local entry = cjson.decode(ARGV[7])
entry['from'] = cur
entry['to'] = new
redis.call('RPUSH', tl, cjson.encode(entry))
local created_event = 0
if ARGV[9] ~= '' and redis.call('HSETNX', evts, ARGV[9], ARGV[12]) == 1 then
  local flat = redis.call('HGETALL', job)
  local snap = {}
  for i = 1, #flat, 2 do snap[flat[i]] = flat[i + 1] end
  local seq = redis.call('HLEN', evts)
  redis.call('HSET', 'evt:' .. ARGV[12], 'id', ARGV[12], 'type', ARGV[9], 'job_id', id,
    'client_id', client, 'created_at', now_iso, 'snapshot', cjson.encode(snap),
    'state', 'pending', 'attempts', '0', 'seq', seq)
  redis.call('ZADD', cfg.delivery_set, now, ARGV[12])
  created_event = 1
end
if cfg.terminal[new] and cfg.retention > 0 then
  for _, k in ipairs({job, tl, evts}) do redis.call('EXPIRE', k, cfg.retention) end
end
return {1, cur, created_event}
"""


@dataclass(frozen=True)
class TransitionResult:
    applied: bool
    previous: JobState | None  # None when the job does not exist
    event_created: bool = False
    event_id: str | None = None


def _script_config(retention_seconds: int) -> str:
    return json.dumps(
        {
            "public": {s.value: PUBLIC_STATUS[s] for s in JobState},
            "due": {s.value: STATE_DUE_SET[s] for s in STATE_DUE_SET},
            "terminal": {s.value: True for s in TERMINAL},
            "job_due_sets": list(keys.JOB_DUE_SETS),
            "delivery_set": keys.DUE_DELIVERY,
            "deadline_set": keys.DUE_DEADLINE,
            "retention": retention_seconds,
        }
    )


class StateMachine:
    """Holds the registered script and the retention that terminal jobs get."""

    def __init__(self, r: redis.Redis, retention_seconds: int) -> None:
        self._redis = r
        self._script = r.register_script(_TRANSITION_LUA)
        self._config = _script_config(retention_seconds)

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
        incr: str | None = None,
        now: float | None = None,
        deadline_at: float | None = None,
    ) -> TransitionResult:
        """Move ``job_id`` to ``to`` if it is in one of ``expected``; tell whether it did.

        ``fields`` are written with the move (``None`` deletes a field); ``due_at`` is when the
        job is next due in the set its new state lives in; ``emit`` writes the state's
        downstream event into the outbox unless one of that type exists for the job already;
        ``deadline_at`` sets a new deadline (an operator's retry of a failed job).
        """
        expected = tuple(expected)
        for state in expected:
            if to not in ALLOWED[state]:
                raise ValueError(f"transition {state} -> {to} is not in the state machine")
        moment = clock.now() if now is None else now
        stamp = clock.iso(moment)
        entry = {"at": stamp, "type": "transition", **(timeline or {})}
        event_type = EVENT_FOR_STATE.get(to, "") if emit else ""
        event_id = new_id("evt", moment) if event_type else ""
        encoded = {k: (None if v is None else _encode(v)) for k, v in (fields or {}).items()}
        applied, previous, created = self._script(
            keys=[keys.job(job_id), keys.timeline(job_id), keys.job_events(job_id)],
            args=[
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
                incr or "",
                event_id,
                "" if deadline_at is None else repr(deadline_at),
            ],
        )
        prev = _decode(previous)
        return TransitionResult(
            applied=applied == 1,
            previous=JobState(prev) if prev else None,
            event_created=created == 1,
            event_id=event_id if created == 1 else None,
        )


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _encode(value: Any) -> str:
    """Hash fields are strings: structures are stored as JSON, scalars as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))
