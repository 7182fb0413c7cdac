"""Sentry and logging, with every secret scrubbed before it can leave the process.

Logs are text lines, or with ``LOG_FORMAT=json`` one JSON object a line (python-json-logger)
carrying the job, client, HTTP request and Celery task the line is about
(:mod:`orchestrator.core.logcontext`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import sentry_sdk
from pythonjsonlogger.json import JsonFormatter
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.flask import FlaskIntegration

from orchestrator.core.config import Settings, secret_values
from orchestrator.core.logcontext import ContextFilter

REDACTED = "[redacted]"
SENSITIVE_HEADERS = (
    "authorization",
    "ocp-apim-subscription-key",
    "x-webhook-url",
    "cookie",
    "webhook-signature",
)
# API keys, webhook secrets and per-job callback tokens have recognisable shapes.
_PATTERNS = (
    re.compile(r"pxo_[A-Za-z0-9_\-]{20,}"),
    re.compile(r"whsec_[A-Za-z0-9+/=]{20,}"),
    re.compile(r"(/webhooks/pixazo/job_[0-9a-z]+/)[0-9a-f]{64}"),
    re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{64}(?![0-9A-Za-z])"),  # a token quoted on its own
)


def scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


# A Sentry event or breadcrumb (the SDK types them as a TypedDict and a dict): the scrubbed copy
# has the same shape.
_Payload = TypeVar("_Payload", bound=Mapping[str, Any])


def scrub_event(event: _Payload, secrets: list[str]) -> _Payload:
    headers = (event.get("request") or {}).get("headers")
    if isinstance(headers, dict):
        for name in list(headers):
            if name.lower() in SENSITIVE_HEADERS:
                headers[name] = REDACTED
    return cast(_Payload, json.loads(scrub_text(json.dumps(event, default=str), secrets)))


class SecretFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub_text(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text, so a traceback is scrubbed once, here, like the message.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for name in ("exc_text", "stack_info"):
            text = getattr(record, name, None)
            if text:
                setattr(record, name, scrub_text(text, self._secrets))
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The JSON line's own fields; the context's (job_id, client_id, request_id, task_name, task_id)
# and any ``extra`` follow.
JSON_FIELDS = ("asctime", "levelname", "name", "message")
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class ScrubbingJsonFormatter(JsonFormatter):
    """JSON lines, scrubbed as a whole: the formatter writes tracebacks itself (from
    ``exc_info``, not the filtered ``exc_text``), and ``extra`` fields pass no filter."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(list(JSON_FIELDS), rename_fields=JSON_RENAMES)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record), self._secrets)


def configure_logging(settings: Settings) -> None:
    """Root logging as ``LOG_FORMAT`` says, with the context fields and the secret filter."""
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
        if settings.log_format == "json":
            handler.setFormatter(ScrubbingJsonFormatter(secret_values(settings)))
    install_log_filter(settings)


def install_log_filter(settings: Settings) -> None:
    secret_filter = SecretFilter(secret_values(settings))
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(secret_filter)
    root.addFilter(secret_filter)


def init_sentry(settings: Settings) -> None:
    if not settings.sentry_dsn:
        return
    secrets = secret_values(settings)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[FlaskIntegration(), CeleryIntegration()],
        send_default_pii=False,
        before_send=lambda event, hint: scrub_event(event, secrets),
        before_breadcrumb=lambda crumb, hint: scrub_event(crumb, secrets),
    )
