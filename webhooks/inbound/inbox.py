"""The callback inbox: a received callback is recorded here in one Redis round trip, then
applied (by the receiver at once; by a task if that apply never finished). A duplicate (same
job, request_id and status) is recognised by that same round trip and goes no further. That
round trip also claims a job still waiting on its submit for the callback's request, so nothing
resubmits a job Pixazo already holds, and reads back the job fields the apply decides on.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.client import Pipeline

from orchestrator.core import clock, keys, lua
from orchestrator.core.compact import RAW_BODY_CAP, clip
from orchestrator.core.ids import new_id

INBOX_TTL_SECONDS = 7 * 24 * 3600
APPLY_GRACE_SECONDS = 30.0  # after this, beat re-sends a recorded callback whose task was lost
MAX_DUPLICATES_ON_TIMELINE = 5
SEEN_FIELD_PREFIX = "cb:"  # job hash fields counting each (request_id, status) received
# ... as named before issue 12, with the whole request id (still counted by record_callback.lua)
OLD_SEEN_FIELD_PREFIX = "cbseen:"
# The field names 64 bits of the request id's SHA-256 (11 characters), where Pixazo's ids run
# to 60: a job hears of a handful of requests, and a false match would take ~2**32 of them.
_SEEN_DIGEST_BYTES = 8
_UNKNOWN_JOB, _NEW = -1, 1


def seen_field(upstream_request_id: str, upstream_status: str) -> str:
    """The job hash field that counts the callbacks of one (request_id, status): a field, not
    a key of its own, so it costs a few bytes and expires with the job. record_callback.lua
    counts in the field named the older way (:data:`OLD_SEEN_FIELD_PREFIX` and the whole id)
    instead when the job has it, so a callback recorded before the rename is still known."""
    digest = hashlib.sha256(upstream_request_id.encode("utf-8")).digest()[:_SEEN_DIGEST_BYTES]
    name = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    return f"{SEEN_FIELD_PREFIX}{name}:{upstream_status}"


@dataclass(frozen=True)
class Recorded:
    known_job: bool
    duplicate: bool
    inbox_id: str | None
    job: dict[str, str] | None = None  # a new callback: the fields asked for, as recorded


class CallbackInbox:
    def __init__(self, r: redis.Redis) -> None:
        self._redis = r
        self._record = r.register_script(lua.source("record_callback"))

    def record(
        self,
        job_id: str,
        status: dict[str, Any],
        raw_body: str,
        read_back: Sequence[str] = (),
    ) -> Recorded:
        """Record the callback; ``read_back`` names job hash fields to return for a new one
        (the apply's first read, saved; absent fields are left out)."""
        now = clock.now()
        inbox_id = new_id("cb", now)
        entry = {
            "at": clock.iso(now),
            "type": "callback",
            "request_id": status["request_id"],
            "upstream_status": status["status"],
            "raw": clip(raw_body, RAW_BODY_CAP),
        }
        result = self._record(
            keys=[
                keys.job(job_id),
                keys.timeline(job_id),
                keys.inbox(inbox_id),
                keys.DUE_CALLBACK,
            ],
            args=[
                inbox_id,
                json.dumps(entry),
                json.dumps({"job_id": job_id, "status": status}),
                seen_field(status["request_id"], status["status"]),
                INBOX_TTL_SECONDS,
                MAX_DUPLICATES_ON_TIMELINE,
                repr(now + APPLY_GRACE_SECONDS),
                status["request_id"],
                *read_back,
            ],
        )
        code, *values = cast("list[Any]", result)
        if code == _UNKNOWN_JOB:
            return Recorded(False, False, None)
        if code != _NEW:
            return Recorded(True, True, None)
        job = {f: v for f, v in zip(read_back, values, strict=True) if v is not None}
        return Recorded(True, False, inbox_id, job if read_back else None)

    def load(self, inbox_id: str) -> dict[str, Any] | None:
        value = self._redis.get(keys.inbox(inbox_id))
        return json.loads(value) if value else None

    def done(self, inbox_id: str, pipe: Pipeline | None = None) -> None:
        """The entry is applied: forget it. With ``pipe``, only queued there (the caller sends
        it with its own last write: one round trip)."""
        own = pipe is None
        pipe = self._redis.pipeline(transaction=True) if pipe is None else pipe
        pipe.zrem(keys.DUE_CALLBACK, inbox_id)
        pipe.delete(keys.inbox(inbox_id))
        if own:
            pipe.execute()
