"""Time in the two forms the orchestrator stores: unix seconds for scores, ISO 8601 for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float | None = None) -> str:
    """UTC with milliseconds and a ``Z``, the form every timestamp in our API takes (spelt
    field by field: ``strftime`` took a third longer, and a request stamps several)."""
    m = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 time (a ``Z`` suffix allowed; no offset reads as UTC), or None for an empty
    or unreadable value. The one parser of times people and stored records give us."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
