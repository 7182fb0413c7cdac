"""Typed views of the stored hashes: each record is built from its Redis hash in one place.

Redis hands back strings (the connection decodes responses); these classes turn them into
typed fields once, so the code that uses a record never parses a field itself. The stores
(``JobStore``, the event hashes written by ``transition.lua``) keep the hashes as they are.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from orchestrator.core.compact import pack, unpack


class JobState(StrEnum):
    """A job's stored status; the transitions between them are in ``orchestrator.jobs.state``."""

    QUEUED = "queued"
    SUBMITTING = "submitting"  # a worker holds the submit; Pixazo may or may not have it
    SUBMIT_UNKNOWN = "submit_unknown"  # the submit's outcome is unknown: wait, never resend blindly
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


def _json(value: str | None, default: Any) -> Any:
    return json.loads(value) if value else default


PACKED_SNAPSHOT = "snapshot_z"  # prefix of a settled event's packed snapshot chunks: ..._z0, _z1
SNAPSHOT_CHUNK = 64  # characters per chunk: Redis's default hash-max-listpack-value


def _snapshot(raw: Mapping[str, str]) -> dict[str, str]:
    """The event's job snapshot: plain while pending, packed in chunks once settled
    (webhooks/outbound/outbox.py)."""
    if f"{PACKED_SNAPSHOT}0" in raw:
        chunks = (raw.get(f"{PACKED_SNAPSHOT}{i}") or "" for i in itertools.count())
        packed = "".join(itertools.takewhile(bool, chunks))
        return cast("dict[str, str]", json.loads(unpack(packed)))
    return cast("dict[str, str]", _json(raw.get("snapshot"), {}))


def packed_snapshot_chunks(snapshot: Mapping[str, str]) -> list[str]:
    """The chunk values :func:`_snapshot` reads back as ``snapshot``."""
    packed = pack(json.dumps(snapshot, separators=(",", ":")))
    return [packed[i : i + SNAPSHOT_CHUNK] for i in range(0, len(packed), SNAPSHOT_CHUNK)]


def is_snapshot_field(name: str) -> bool:
    return name == "snapshot" or name.startswith(PACKED_SNAPSHOT)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True)
class Event:
    """One downstream event (``evt:<id>``): the job as it was when the event was made, and
    where its delivery stands. Missing fields read as their defaults: a hash a settle wrote
    after the event expired holds only a few fields, and reads as not pending."""

    id: str
    type: str
    job_id: str
    client_id: str
    created_at: str
    snapshot: dict[str, str] = field(repr=False)
    state: str = ""
    attempts: int = 0
    seq: int = 0
    generation: int = 1
    deferrals: int = 0
    due_at: float | None = None
    next_attempt_at: str | None = None
    settled_at: str | None = None
    note: str | None = None

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> Event:
        return cls(
            id=raw.get("id", ""),
            type=raw.get("type", ""),
            job_id=raw.get("job_id", ""),
            client_id=raw.get("client_id", ""),
            created_at=raw.get("created_at", ""),
            snapshot=_snapshot(raw),
            state=raw.get("state", ""),
            attempts=int(raw.get("attempts") or 0),
            seq=int(raw.get("seq") or 0),
            generation=int(raw.get("generation") or 1),
            deferrals=int(raw.get("deferrals") or 0),
            due_at=_float(raw.get("due_at")),
            next_attempt_at=raw.get("next_attempt_at") or None,
            settled_at=raw.get("settled_at") or None,
            note=raw.get("note") or None,
        )


@dataclass(frozen=True)
class Job:
    """One job (``job:<id>``) with the fields the API's job object and the console read.
    A view only: compare-and-set guards keep using the raw strings they compare."""

    id: str
    state: JobState
    client_id: str
    model: str
    created_at: str
    updated_at: str
    input: dict[str, Any] = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)
    callback_url: str | None = None
    request_id: str | None = None
    upstream_status: str | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    estimated_cost_usd: float | None = None
    attempts: int = 0
    polls: int = 0
    completed_at: str | None = None

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> Job:
        return cls(
            id=raw["id"],
            state=JobState(raw["status"]),
            client_id=raw.get("client_id", ""),
            model=raw.get("model", ""),
            created_at=raw.get("created_at", ""),
            updated_at=raw.get("updated_at") or raw.get("created_at", ""),
            input=_json(raw.get("input"), {}),
            metadata=_json(raw.get("metadata"), {}),
            callback_url=raw.get("callback_url") or None,
            request_id=raw.get("request_id") or None,
            upstream_status=raw.get("upstream_status") or None,
            output=_json(raw.get("output"), None),
            error=_json(raw.get("error"), None),
            estimated_cost_usd=_float(raw.get("estimated_cost_usd")),
            attempts=int(raw.get("attempts") or 0),
            polls=int(raw.get("polls") or 0),
            completed_at=raw.get("completed_at") or None,
        )


def job_from_store(raw: Mapping[str, str] | None) -> Job | None:
    """A ``Job`` from ``JobStore.get_raw``'s answer (None stays None)."""
    return Job.from_hash(raw) if raw is not None else None
