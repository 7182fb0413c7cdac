"""Every setting the orchestrator reads, read and checked once at start-up.

Nothing else in the code base looks at the environment: processes call :func:`load_settings`
when they start and pass the resulting :class:`Settings` along, so a bad value stops start-up
with one line naming the variable instead of failing later inside a task.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from orchestrator.core import redis_conn

DEFAULT_PIXAZO_BASE_URL = "https://gateway.pixazo.ai"
DEFAULT_DELIVERY_SCHEDULE = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_SUBMIT_RETRY_SCHEDULE = (1, 2, 4, 8, 16, 32, 60, 120, 300, 600)
DEFAULT_POLL_SCHEDULE = (10, 20, 40, 60, 120, 300)
WEBHOOK_MODES = ("terminal", "sync")
LOG_FORMATS = ("text", "json")  # LOG_FORMAT: json writes one JSON object a line
AMQP_SCHEMES = ("amqp", "amqps")
SECONDS_PER_DAY = 86400
# A consumer is given at most this long to answer one event; the delivery lock and the
# endpoint lease are derived from it, so it bounds how long a dead worker holds them.
MAX_DELIVERY_TIMEOUT_SECONDS = 300
# The grace of an unknown submit must outlast the submit itself (connect + read timeout) by
# this much, for the Redis round trips that record its outcome and for clock skew between hosts.
GRACE_MARGIN_SECONDS = 2.0
# Connecting to Pixazo (TCP and TLS) may take at most this long; the Pixazo client uses it, and
# the submit grace above is checked against it.
PIXAZO_CONNECT_TIMEOUT_SECONDS = 5.0


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one process. Secrets are excluded from ``repr``."""

    redis_url: str
    broker_url: str
    pixazo_base_url: str = DEFAULT_PIXAZO_BASE_URL
    pixazo_api_key: str = field(default="", repr=False)
    pixazo_webhook_mode: str = "terminal"
    public_base_url: str = ""
    secret_key: str = field(default="", repr=False)
    allow_http: bool = False
    stuck_after_seconds: int = 300
    job_deadline_seconds: int = 3600
    delivery_retry_schedule: tuple[int, ...] = DEFAULT_DELIVERY_SCHEDULE
    submit_retry_schedule: tuple[int, ...] = DEFAULT_SUBMIT_RETRY_SCHEDULE
    poll_schedule: tuple[int, ...] = DEFAULT_POLL_SCHEDULE
    unknown_grace_seconds: int = 900
    balance_probe_seconds: float = 60.0
    submit_rate_per_second: float = 20.0
    submit_concurrency: int = 16
    submit_timeout_seconds: float = 30.0
    delivery_timeout_seconds: float = 15.0
    reconcile_interval_seconds: float = 5.0
    reconcile_batch_size: int = 500
    worker_stall_seconds: int = 60
    job_retention_days: int = 30
    max_body_bytes: int = 256 * 1024
    client_rate_limit_per_minute: int = 600
    sentry_dsn: str = field(default="", repr=False)
    log_format: str = "text"
    task_events: bool = False
    testing: bool = False

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(name, f"must be a finite number, got {raw!r}")
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _bounded_float(name: str, raw: str, minimum: float, maximum: float) -> float:
    value = _float(name, raw, minimum)
    if value > maximum:
        raise ConfigError(name, f"must be at most {maximum:g}, got {value:g}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be 1 or 0, got {raw!r}")


def _schedule(name: str, raw: str) -> tuple[int, ...]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ConfigError(name, "must list at least one delay in seconds")
    return tuple(_int(name, p) for p in parts)


def _redis_url(name: str, raw: str) -> str:
    try:
        redis_conn.check_url(raw)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None
    return raw


def _broker_url(name: str, raw: str) -> str:
    """Any Redis form the store takes, or RabbitMQ (``amqp://``, ``amqps://``)."""
    if urlsplit(raw).scheme in AMQP_SCHEMES:
        return raw
    try:
        redis_conn.check_url(raw)
    except ValueError:
        raise ConfigError(
            name, "must be an amqp:// or amqps:// URL, or one of REDIS_URL's forms"
        ) from None
    return raw


def _is_loopback_or_private(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def _public_base_url(name: str, raw: str, allow_http: bool) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(name, "must be an absolute https:// URL")
    if not allow_http:
        if parts.scheme != "https":
            raise ConfigError(name, "must be https (set ORCHESTRATOR_ALLOW_HTTP=1 only in dev)")
        if _is_loopback_or_private(parts.hostname):
            raise ConfigError(name, "must be a public host (ORCHESTRATOR_ALLOW_HTTP=1 in dev)")
    return raw.rstrip("/")


_OPTIONAL: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "ORCHESTRATOR_STUCK_AFTER_SECONDS": ("stuck_after_seconds", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_JOB_DEADLINE_SECONDS": ("job_deadline_seconds", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE": ("delivery_retry_schedule", _schedule),
    "ORCHESTRATOR_SUBMIT_RETRY_SCHEDULE": ("submit_retry_schedule", _schedule),
    "ORCHESTRATOR_POLL_SCHEDULE": ("poll_schedule", _schedule),
    "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS": ("unknown_grace_seconds", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_BALANCE_PROBE_SECONDS": (
        "balance_probe_seconds",
        lambda n, v: _float(n, v, 0.1),
    ),
    "ORCHESTRATOR_SUBMIT_RATE_PER_SECOND": (
        "submit_rate_per_second",
        lambda n, v: _float(n, v, 0.01),
    ),
    "ORCHESTRATOR_SUBMIT_CONCURRENCY": ("submit_concurrency", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS": (
        "submit_timeout_seconds",
        lambda n, v: _float(n, v, 0.1),
    ),
    "ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS": (
        "delivery_timeout_seconds",
        lambda n, v: _bounded_float(n, v, 0.1, MAX_DELIVERY_TIMEOUT_SECONDS),
    ),
    "ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS": (
        "reconcile_interval_seconds",
        lambda n, v: _float(n, v, 0.1),
    ),
    "ORCHESTRATOR_RECONCILE_BATCH_SIZE": ("reconcile_batch_size", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_WORKER_STALL_SECONDS": ("worker_stall_seconds", lambda n, v: _int(n, v, 0)),
    "ORCHESTRATOR_JOB_RETENTION_DAYS": ("job_retention_days", lambda n, v: _int(n, v, 1)),
    "ORCHESTRATOR_MAX_BODY_BYTES": ("max_body_bytes", lambda n, v: _int(n, v, 1024)),
    "ORCHESTRATOR_CLIENT_RATE_LIMIT_PER_MINUTE": (
        "client_rate_limit_per_minute",
        lambda n, v: _int(n, v, 1),
    ),
}


def load_settings(
    environ: Mapping[str, str] | None = None, *, require_upstream: bool = True
) -> Settings:
    """Build Settings from the environment (or the given mapping).

    ``require_upstream`` is False only for commands that never talk to Pixazo or sign
    callback URLs (for instance ``orchestrator sim``), which then need no key or secret.
    """
    env = dict(os.environ if environ is None else environ)
    redis_url = env.get("REDIS_URL", "").strip()
    if not redis_url:
        raise ConfigError("REDIS_URL", "is required (orchestrator demo starts its own Redis)")
    redis_url = _redis_url("REDIS_URL", redis_url)
    broker_url = _broker_url(
        "CELERY_BROKER_URL", env.get("CELERY_BROKER_URL", "").strip() or redis_url
    )
    allow_http = _bool("ORCHESTRATOR_ALLOW_HTTP", env.get("ORCHESTRATOR_ALLOW_HTTP", ""))
    values: dict[str, Any] = {
        "redis_url": redis_url,
        "broker_url": broker_url,
        "allow_http": allow_http,
        "testing": _bool("ORCHESTRATOR_TESTING", env.get("ORCHESTRATOR_TESTING", "")),
        "sentry_dsn": env.get("SENTRY_DSN", "").strip(),
        "task_events": _bool("ORCHESTRATOR_TASK_EVENTS", env.get("ORCHESTRATOR_TASK_EVENTS", "")),
    }
    base = env.get("PIXAZO_BASE_URL", "").strip() or DEFAULT_PIXAZO_BASE_URL
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).hostname:
        raise ConfigError("PIXAZO_BASE_URL", "must be an absolute http(s) URL")
    values["pixazo_base_url"] = base.rstrip("/")
    mode = env.get("PIXAZO_WEBHOOK_MODE", "").strip() or "terminal"
    if mode not in WEBHOOK_MODES:
        raise ConfigError("PIXAZO_WEBHOOK_MODE", f"must be one of {', '.join(WEBHOOK_MODES)}")
    values["pixazo_webhook_mode"] = mode
    log_format = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in LOG_FORMATS:
        raise ConfigError("LOG_FORMAT", f"must be one of {', '.join(LOG_FORMATS)}")
    values["log_format"] = log_format
    for name, (attr, parse) in _OPTIONAL.items():
        raw = env.get(name, "").strip()
        if raw:
            values[attr] = parse(name, raw)
    if require_upstream:
        values.update(_required_upstream(env, allow_http))
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def _required_upstream(env: Mapping[str, str], allow_http: bool) -> dict[str, Any]:
    key = env.get("PIXAZO_API_KEY", "").strip()
    if not key:
        raise ConfigError("PIXAZO_API_KEY", "is required")
    public = env.get("PUBLIC_BASE_URL", "").strip()
    if not public:
        raise ConfigError("PUBLIC_BASE_URL", "is required (the https base Pixazo calls back)")
    secret = env.get("ORCHESTRATOR_SECRET_KEY", "").strip()
    if len(secret) < 16:
        raise ConfigError("ORCHESTRATOR_SECRET_KEY", "is required, at least 16 characters")
    return {
        "pixazo_api_key": key,
        "public_base_url": _public_base_url("PUBLIC_BASE_URL", public, allow_http),
        "secret_key": secret,
    }


def _check_consistency(settings: Settings) -> None:
    if settings.job_deadline_seconds <= settings.stuck_after_seconds:
        raise ConfigError(
            "ORCHESTRATOR_JOB_DEADLINE_SECONDS",
            "must be longer than ORCHESTRATOR_STUCK_AFTER_SECONDS",
        )
    submit = settings.submit_timeout_seconds + PIXAZO_CONNECT_TIMEOUT_SECONDS + GRACE_MARGIN_SECONDS
    if settings.unknown_grace_seconds <= submit:
        # Shorter, and a submit's late answer could race the resubmit the grace allows.
        raise ConfigError(
            "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS",
            f"must be longer than ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS + "
            f"{PIXAZO_CONNECT_TIMEOUT_SECONDS:g} s connect + {GRACE_MARGIN_SECONDS:g} s "
            f"(> {submit:g})",
        )


def secret_values(settings: Settings) -> list[str]:
    """The strings that must never reach a log line or an error report."""
    return [
        getattr(settings, f.name)
        for f in fields(settings)
        if not f.repr and getattr(settings, f.name)
    ]
