"""Sentry and logging, with every secret scrubbed before it can leave the process."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.flask import FlaskIntegration

from orchestrator.core.config import Settings, secret_values

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
