"""``POST /webhooks/pixazo/<job_id>/<token>``: Pixazo's callbacks.

In order: identify the job from the URL, verify its token (no Redis needed for a forgery),
parse the body against the documented status shape, record it (one round trip, which also
recognises duplicates), answer. Applying it to the job is a task's work.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request
from marshmallow import ValidationError

from orchestrator.core import enqueue, metrics
from orchestrator.core.errors import ApiError, encodable, flatten_messages
from orchestrator.core.ids import is_id
from orchestrator.core.services import current
from orchestrator.core.tokens import verify_callback_token
from orchestrator.upstream.pixazo import parse_status
from webhooks.inbound.inbox import Recorded

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
_NOT_FOUND = "No such callback URL."


@bp.post("/pixazo/<job_id>/<token>")
def pixazo_callback(job_id: str, token: str) -> Response:
    try:
        recorded = _record(job_id, token)
    except ApiError:
        metrics.CALLBACKS.inc("refused")
        raise
    metrics.CALLBACKS.inc("duplicate" if recorded.duplicate else "new")
    return jsonify({"received": True, "duplicate": recorded.duplicate})


def _record(job_id: str, token: str) -> Recorded:
    """The callback recorded (and its apply task enqueued), or the ApiError refusing it."""
    svc = current()
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
    recorded = svc.inbox.record(job_id, _jsonable(status), raw)
    if not recorded.known_job:
        raise ApiError(404, "not_found", _NOT_FOUND)
    if recorded.inbox_id:
        enqueue.apply_callback(recorded.inbox_id)
    return recorded


def _jsonable(status: dict) -> dict:
    return {k: v for k, v in status.items() if v is not None or k in ("error", "output")}
