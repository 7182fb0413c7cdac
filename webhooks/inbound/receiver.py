"""``POST /webhooks/pixazo/<job_id>/<token>``: Pixazo's callbacks.

In order: identify the job from the URL, verify its token (no Redis needed for a forgery),
parse the body against the documented status shape, record it (one round trip, which also
recognises duplicates and reads back what the apply decides on), apply a new one to the job
(the state machine's move; the event's delivery is a task's work), answer.

The apply is bounded (a few Redis calls, each with its socket timeout, and a bounded number of
re-reads) and cannot turn a recorded callback into an error: if it fails, the answer is still
200, and the ``apply_callback`` task that beat sends for an entry still there after the grace
applies it by the same path.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError
from redis.exceptions import RedisError

from orchestrator.core import metrics
from orchestrator.core.errors import ApiError, encodable, flatten_messages
from orchestrator.core.ids import is_id
from orchestrator.core.services import Services, current
from orchestrator.core.tokens import verify_callback_token
from orchestrator.upstream.pixazo import parse_status
from webhooks.inbound.apply import READ_BACK, apply_recorded
from webhooks.inbound.inbox import Recorded

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
_NOT_FOUND = "No such callback URL."


@bp.post("/pixazo/<job_id>/<token>")
def pixazo_callback(job_id: str, token: str) -> Response:
    svc = current()
    try:
        recorded, status = _record(svc, job_id, token)
    except ApiError:
        metrics.CALLBACKS.inc("refused")
        raise
    metrics.CALLBACKS.inc("duplicate" if recorded.duplicate else "new")
    if recorded.inbox_id:
        _apply(svc, job_id, recorded.inbox_id, status, recorded.job)
    return jsonify({"received": True, "duplicate": recorded.duplicate})


def _record(svc: Services, job_id: str, token: str) -> tuple[Recorded, dict[str, Any]]:
    """The callback recorded, with its status body; or the ApiError refusing it."""
    if not is_id(job_id, "job") or not verify_callback_token(
        svc.settings.secret_key, job_id, token
    ):
        raise ApiError(404, "not_found", _NOT_FOUND)
    raw = request.get_data(cache=False, as_text=True)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "The body is not JSON.") from None
    if not encodable(body):
        raise ApiError(400, "bad_request", "The body is not valid Unicode.")
    try:
        status = parse_status(body)
    except ValidationError as exc:
        raise ApiError(
            400, "bad_request", "The body is not a Pixazo status.", flatten_messages(exc.messages)
        ) from None
    body_status = _jsonable(status)
    recorded = svc.inbox.record(job_id, body_status, raw, READ_BACK)
    if not recorded.known_job:
        raise ApiError(404, "not_found", _NOT_FOUND)
    return recorded, body_status


def _apply(
    svc: Services,
    job_id: str,
    inbox_id: str,
    status: dict[str, Any],
    job: dict[str, str] | None,
) -> None:
    """Apply a new callback now. It is recorded whatever happens here: a failure (Redis away
    or failing mid-way, or a bug) is logged and left to the task, never answered as an error."""
    try:
        apply_recorded(svc, inbox_id, job_id, status, job)
    except RedisError:
        log.warning(
            "callback %s for %s recorded but not applied; the apply task will apply it",
            inbox_id,
            job_id,
            exc_info=True,
        )
    except Exception:  # a bug: reported (Sentry takes error logs), the answer still 200
        log.exception(
            "callback %s for %s recorded but its apply failed; the apply task will retry it",
            inbox_id,
            job_id,
        )


def _jsonable(status: dict) -> dict:
    return {k: v for k, v in status.items() if v is not None or k in ("error", "output")}
