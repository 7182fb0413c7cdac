"""One error shape for every answer our HTTP surfaces give: ``{"error": {code, message, details}}``.

Anything a client or Pixazo sends that we cannot use ends as a 4xx of this shape; a 500 is only
ever our own bug, and it says nothing about the request or our secrets.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
STORE_RETRY_AFTER_SECONDS = 1

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested messages as ``{"input.duration": "..."}``: one line per field."""
    flat: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = (
                prefix
                if key == "_schema" and prefix
                else (f"{prefix}.{key}" if prefix else str(key))
            )
            flat.update(flatten_messages(value, name))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = " ".join(messages)
    elif isinstance(messages, list):
        for item in messages:
            flat.update(flatten_messages(item, prefix))
    else:
        flat[prefix or "_schema"] = str(messages)
    return flat


def encodable(value: Any) -> bool:
    """False for parsed JSON holding lone surrogates ("\\ud800" is valid JSON syntax): no UTF-8
    store, key or upstream takes them, so they are refused at the door instead of as a 500."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def validation_error(messages: Any, prefix: str = "") -> ApiError:
    details = flatten_messages(messages, prefix)
    return ApiError(422, "validation_error", "The request has invalid fields.", details)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        err = validation_error(exc.messages)
        return error_response(err.status, err.code, err.message, err.details)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = exc.description if status < 500 else "Internal server error."
        response = error_response(status, code, message or code)
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def _store_unavailable(exc: Exception) -> Response:
        # Redis restarting or loading its data: nothing was written, so the client can retry.
        log.warning("store unavailable: %s", type(exc).__name__)
        response = error_response(503, "unavailable", "The job store is unavailable; retry.")
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal server error.")
