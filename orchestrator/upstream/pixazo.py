"""Pixazo's HTTP API, and what each of its answers means for a job.

The one rule that shapes this module: every accepted submit is a paid generation, and the docs
promise no idempotency key. So a submit whose answer we did not read is reported as *unknown*,
never as retryable; only failures that prove nothing was queued at Pixazo (a 429 from its
gateway, a connection that was never made) may be retried freely. A 5xx is unknown too: the
simulator's ``rate_500_after_accept`` shows the case of a generation queued and charged whose
answer was an error.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass
from typing import Any, TypedDict

import requests
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from urllib3.exceptions import NameResolutionError, NewConnectionError

from orchestrator.core.config import PIXAZO_CONNECT_TIMEOUT_SECONDS

# Answers that say the request was not handled (RFC 9110: 429 Too Many Requests, 503 Service
# Unavailable), so a resubmit cannot be a second charge; every other 5xx may follow a queued,
# charged generation and is an unknown outcome.
NOT_HANDLED_CODES = (429, 503)
UPSTREAM_STATUSES = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR")
CONNECT_TIMEOUT_SECONDS = PIXAZO_CONNECT_TIMEOUT_SECONDS  # set in core.config, which checks it
STATUS_TIMEOUT_SECONDS = 15.0
MAX_RETRY_AFTER_SECONDS = 600.0
_ANSWER_EXCERPT = 500
_MAX_REQUEST_ID = 256
_DEFAULT_MEDIA_TYPE = "video/mp4"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # 400: the request itself is wrong; resending will not help
    AUTH = "auth"  # 401/403
    INSUFFICIENT_BALANCE = "insufficient_balance"  # 402
    RETRYABLE = "retryable"  # 429, or the request never left our side
    UNKNOWN = "unknown"  # maybe accepted (timeout after send, 5xx): never resend blindly


@dataclass(frozen=True)
class SubmitResult:
    outcome: Outcome
    http_status: int | None = None
    request_id: str | None = None
    message: str = ""
    retry_after: float | None = None
    latency_ms: int = 0
    answer: str = ""  # the start of Pixazo's answer, for the timeline


class _Output(Schema):
    class Meta:
        unknown = EXCLUDE

    media_url = fields.List(fields.String(), required=True)
    media_type = fields.String(load_default=_DEFAULT_MEDIA_TYPE)


class UpstreamStatusSchema(Schema):
    """The body of a callback and of the status route (the same shape, per the docs)."""

    class Meta:
        unknown = EXCLUDE

    request_id = fields.String(required=True, validate=validate.Length(min=1, max=_MAX_REQUEST_ID))
    status = fields.String(required=True, validate=validate.OneOf(UPSTREAM_STATUSES))
    model_id = fields.String(load_default=None, allow_none=True)
    error = fields.Raw(load_default=None, allow_none=True)
    output = fields.Nested(_Output, load_default=None, allow_none=True)
    created_at = fields.Raw(load_default=None, allow_none=True)
    updated_at = fields.Raw(load_default=None, allow_none=True)
    completed_at = fields.Raw(load_default=None, allow_none=True)


_STATUS_SCHEMA = UpstreamStatusSchema()


class _AnswerFields(TypedDict):
    """The fields of a SubmitResult that every read answer fills."""

    http_status: int
    latency_ms: int
    answer: str


def parse_status(body: Any) -> dict[str, Any]:
    """Raises marshmallow.ValidationError when the body is not the documented status shape."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["must be a JSON object"]})
    data = _plain_status(body)
    if data is None:  # anything off the plain shape: the schema decides, and words its errors
        data = _STATUS_SCHEMA.load(body)
    if data["error"] is not None and not isinstance(data["error"], str):
        data["error"] = json.dumps(data["error"])[:_ANSWER_EXCERPT]
    return data


_TIMESTAMP_FIELDS = ("created_at", "updated_at", "completed_at")


def _plain_status(body: dict[str, Any]) -> dict[str, Any] | None:
    """What ``UpstreamStatusSchema().load(body)`` returns, for a body of the documented shape,
    or None when the body is anything else (then the schema itself loads it). A schema load
    was 13% of a duplicate callback's CPU; every callback and poll answer has this shape.
    tests/orchestrator/upstream/test_parse_status.py holds the two equal on random bodies."""
    request_id, status = body.get("request_id"), body.get("status")
    if not (isinstance(request_id, str) and 1 <= len(request_id) <= _MAX_REQUEST_ID):
        return None
    if not (isinstance(status, str) and status in UPSTREAM_STATUSES):
        return None
    model_id = body.get("model_id")
    if model_id is not None and not isinstance(model_id, str):
        return None
    output = body.get("output")
    if output is not None:
        output = _plain_output(output)
        if output is None:
            return None
    data: dict[str, Any] = {"request_id": request_id, "status": status, "model_id": model_id}
    data["error"] = body.get("error")
    data["output"] = output
    for name in _TIMESTAMP_FIELDS:
        data[name] = body.get(name)
    return data


def _plain_output(output: Any) -> dict[str, Any] | None:
    if not isinstance(output, dict):
        return None
    media_url, media_type = output.get("media_url"), output.get("media_type", _DEFAULT_MEDIA_TYPE)
    if not isinstance(media_url, list) or not all(isinstance(url, str) for url in media_url):
        return None
    if not isinstance(media_type, str):
        return None
    return {"media_url": list(media_url), "media_type": media_type}


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (numeric form), clamped; dates and junk are ignored."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _nothing_was_sent(exc: requests.RequestException) -> bool:
    """True only when the failure happened before any byte of the request left."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, NewConnectionError | NameResolutionError)
    return False


def _session_for(base_url: str) -> requests.Session:
    """A keep-alive session that read the environment's proxy settings for Pixazo once.

    With ``trust_env`` (requests' default) every request looks up proxies and NO_PROXY again and
    reads ~/.netrc for credentials (we send a key header, never netrc auth): about 0.3 ms of CPU
    a request. The proxies the environment gives for Pixazo's base URL are the same each time.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(base_url))
    return session


class PixazoClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        submit_timeout: float,
        session: requests.Session | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._key = api_key
        self._submit_timeout = submit_timeout
        self._session = session or _session_for(self._base)
        # The session's default headers (User-Agent, Accept, ...) with ours, merged once: a
        # request is prepared alone and sent on the session, which spares requests' per-call
        # merging of session settings, cookies and hooks (none of which we use): ~0.2 ms a call.
        self._headers = {
            **requests.utils.default_headers(),
            "Content-Type": "application/json",
            "Cache-Control": "no-cache",
            "Ocp-Apim-Subscription-Key": self._key,
        }

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: str | None = None,
        **options: Any,
    ) -> requests.Response:
        prepared = requests.Request(method, url, data=data, headers=headers).prepare()
        return self._session.send(prepared, allow_redirects=False, **options)

    def submit(
        self, path: str, body: dict[str, Any], webhook_url: str, webhook_mode: str
    ) -> SubmitResult:
        headers = {**self._headers, "X-Webhook-URL": webhook_url, "X-Webhook-Mode": webhook_mode}
        started = time.monotonic()
        try:
            answer = self._send(
                "POST",
                self._base + path,
                headers,
                data=json.dumps(body),
                timeout=(CONNECT_TIMEOUT_SECONDS, self._submit_timeout),
            )
        except requests.RequestException as exc:
            latency = int((time.monotonic() - started) * 1000)
            if _nothing_was_sent(exc):
                return SubmitResult(
                    Outcome.RETRYABLE, message=type(exc).__name__, latency_ms=latency
                )
            return SubmitResult(Outcome.UNKNOWN, message=type(exc).__name__, latency_ms=latency)
        latency = int((time.monotonic() - started) * 1000)
        return classify_submit(answer, latency)

    def status(self, request_id: str) -> tuple[int, dict[str, Any] | None, str]:
        """(HTTP status, parsed body or None, answer excerpt) of the universal status route."""
        answer = self._send(
            "GET",
            f"{self._base}/v2/requests/status/{request_id}",
            self._headers,
            timeout=(CONNECT_TIMEOUT_SECONDS, STATUS_TIMEOUT_SECONDS),
        )
        excerpt = answer.text[:_ANSWER_EXCERPT]
        if answer.status_code != 200:
            return answer.status_code, None, excerpt
        try:
            return 200, parse_status(answer.json()), excerpt
        except (ValueError, ValidationError):
            return 200, None, excerpt


def _message(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:_ANSWER_EXCERPT]
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("error", "message") if body.get(k)]
        if parts:
            return ": ".join(parts)[:_ANSWER_EXCERPT]
    return answer.text[:_ANSWER_EXCERPT]


def classify_submit(answer: requests.Response, latency_ms: int) -> SubmitResult:
    code = answer.status_code
    excerpt = answer.text[:_ANSWER_EXCERPT]
    base = _AnswerFields(http_status=code, latency_ms=latency_ms, answer=excerpt)
    if 200 <= code < 300:
        try:
            request_id = answer.json().get("request_id")
        except (ValueError, AttributeError):
            request_id = None
        if isinstance(request_id, str) and request_id:
            return SubmitResult(Outcome.ACCEPTED, request_id=request_id, **base)
        return SubmitResult(Outcome.UNKNOWN, message="accepted without a request_id", **base)
    if code == 402:
        return SubmitResult(Outcome.INSUFFICIENT_BALANCE, message=_message(answer), **base)
    if code in (401, 403):
        return SubmitResult(Outcome.AUTH, message=_message(answer), **base)
    if code in NOT_HANDLED_CODES:
        retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
        return SubmitResult(
            Outcome.RETRYABLE, message=_message(answer), retry_after=retry_after, **base
        )
    if code >= 500:
        # The request reached Pixazo, and a 5xx does not say whether it was queued (and
        # charged) before the error: only a callback or the grace period can tell.
        return SubmitResult(Outcome.UNKNOWN, message=f"HTTP {code}: {_message(answer)}", **base)
    return SubmitResult(Outcome.REJECTED, message=_message(answer), **base)
