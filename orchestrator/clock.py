"""Time in the two forms the orchestrator stores: unix seconds for scores, ISO 8601 for people."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float | None = None) -> str:
    """UTC with milliseconds and a ``Z``, the form every timestamp in our API takes."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_upstream(value: object) -> datetime | None:
    """Pixazo mixes ``2026-05-22T13:17:32.110Z`` and ``2026-05-22 13:19:23`` in one payload."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
