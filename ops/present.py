"""Turning stored records into what a page shows: times in two forms, secrets removed.

The console must never show a secret: callback tokens (inside the X-Webhook-URL Pixazo may echo
back), the orchestrator's own keys, webhook secrets and API key hashes. Every string of a job
page passes through :func:`redact`, which replaces the known secret values wherever they occur.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from orchestrator.core import clock, tokens, urls
from orchestrator.core.config import Settings, secret_values

REDACTED = "[redacted]"
_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
# Fields of a client or job record that are secrets (or derived from one).
SECRET_FIELDS = frozenset({"api_key_hash", "webhook_secrets", "password_hash", "token"})
# Colour classes for states (internal sub-states of "queued" keep their own name).
STATE_CLASS = {
    "queued": "st-queued",
    "submitting": "st-queued",
    "submit_unknown": "st-warn",
    "submitted": "st-active",
    "processing": "st-active",
    "completed": "st-ok",
    "failed": "st-bad",
    "canceled": "st-muted",
    "pending": "st-active",
    "delivered": "st-ok",
    "dead": "st-bad",
    "skipped": "st-muted",
}


parse_iso = clock.parse_iso  # the one ISO 8601 parser (kept under this name for the pages)


def relative(value: str | None, now: datetime | None = None) -> str:
    """ "3 min ago" / "in 20 s": the form an operator reads at a glance."""
    moment = parse_iso(value)
    if moment is None:
        return "-"
    delta = ((now or datetime.now(tz=UTC)) - moment).total_seconds()
    return f"{span(abs(delta))} ago" if delta >= 0 else f"in {span(-delta)}"


def span(seconds: float) -> str:
    if seconds < 1:
        return "just now" if seconds < 0.5 else "1 s"
    for size, unit in _UNITS:
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def absolute(value: str | None) -> str:
    moment = parse_iso(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def offset(value: str | None, origin: str | None) -> str:
    """Seconds after the job's intake, for reading a timeline: "+1.234 s"."""
    a, b = parse_iso(value), parse_iso(origin)
    if a is None or b is None:
        return ""
    seconds = (a - b).total_seconds()
    if seconds < 60:
        return f"+{seconds:.3f} s"
    return f"+{span(seconds)} {int(seconds % 60)} s" if seconds < 3600 else f"+{span(seconds)}"


def secrets_for(settings: Settings, job_id: str | None = None) -> list[str]:
    found = [s for s in secret_values(settings) if len(s) >= 8]
    if job_id:
        found.append(tokens.callback_token(settings.secret_key, job_id))
    return found


def redact(value: Any, secrets: list[str]) -> Any:
    """``value`` with every secret string replaced, recursively through dicts and lists."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: REDACTED if k in SECRET_FIELDS else redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def safe_url(url: str | None) -> str | None:
    """A URL as the console shows it: the one rule of :func:`orchestrator.core.urls.safe_url`."""
    return urls.safe_url(url) if url else None


def media_urls(output: dict[str, Any] | None) -> list[str]:
    """Only http(s) URLs go into a <video src>: never javascript: or data: from upstream."""
    urls = (output or {}).get("media_url") or []
    return [u for u in urls if isinstance(u, str) and urlsplit(u).scheme in ("http", "https")]


def pretty(value: Any) -> str:
    """JSON for a <pre>; a string that holds JSON (a raw callback body) is re-indented."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=False, default=str)


def state_class(state: str | None) -> str:
    return STATE_CLASS.get(state or "", "st-muted")


def timeline_rest(entry: dict[str, Any], shown: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a timeline entry a template did not lay out itself."""
    return {
        k: v for k, v in entry.items() if k not in ("at", "type", *shown) and v not in (None, "")
    }
