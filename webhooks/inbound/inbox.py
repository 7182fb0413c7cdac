"""The callback inbox: a received callback is recorded here in one Redis round trip, then
applied by a task. A duplicate (same job, request_id and status) is recognised by that same
round trip and goes no further. That round trip also claims a job still waiting on its submit
for the callback's request, so nothing resubmits a job Pixazo already holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from orchestrator.core import clock, keys, lua
from orchestrator.core.compact import RAW_BODY_CAP, clip
from orchestrator.core.ids import new_id

SEEN_TTL_SECONDS = 7 * 24 * 3600
INBOX_TTL_SECONDS = 7 * 24 * 3600
APPLY_GRACE_SECONDS = 30.0  # after this, beat re-sends a recorded callback whose task was lost
MAX_DUPLICATES_ON_TIMELINE = 5


@dataclass(frozen=True)
class Recorded:
    known_job: bool
    duplicate: bool
    inbox_id: str | None


class CallbackInbox:
    def __init__(self, r: redis.Redis) -> None:
        self._redis = r
        self._record = r.register_script(lua.source("record_callback"))

    def record(self, job_id: str, status: dict[str, Any], raw_body: str) -> Recorded:
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
                keys.callback_seen(job_id, status["request_id"], status["status"]),
                keys.inbox(inbox_id),
                keys.DUE_CALLBACK,
            ],
            args=[
                inbox_id,
                json.dumps(entry),
                json.dumps({"job_id": job_id, "status": status}),
                SEEN_TTL_SECONDS,
                INBOX_TTL_SECONDS,
                MAX_DUPLICATES_ON_TIMELINE,
                repr(now + APPLY_GRACE_SECONDS),
                status["request_id"],
            ],
        )
        if result == -1:
            return Recorded(False, False, None)
        return Recorded(True, result == 0, inbox_id if result == 1 else None)

    def load(self, inbox_id: str) -> dict[str, Any] | None:
        value = self._redis.get(keys.inbox(inbox_id))
        return json.loads(value) if value else None

    def done(self, inbox_id: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(keys.DUE_CALLBACK, inbox_id)
        pipe.delete(keys.inbox(inbox_id))
        pipe.execute()
