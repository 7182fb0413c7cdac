"""The client API under ``/v1``: thin views over intake, the job store and the catalog."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from marshmallow import ValidationError

from orchestrator.core import budgets, catalog, clock, keys, logcontext
from orchestrator.core.clients import Client
from orchestrator.core.errors import ApiError, encodable, validation_error
from orchestrator.core.services import current
from orchestrator.intake.create import checked_callback_url, submit_job
from orchestrator.intake.dialects import videos
from orchestrator.intake.schemas import ClientUpdateSchema, JobListQuerySchema
from orchestrator.jobs import actions
from orchestrator.jobs.store import MAX_EXAMINED, JobFilter, decode_cursor, index_for, render

bp = Blueprint("api", __name__, url_prefix="/v1")
RATE_WINDOW_SECONDS = 60
LIST_MAX_EXAMINED = MAX_EXAMINED  # jobs one list page may read for a filter no index covers
NO_SUCH_JOB = "No such job."
_LIST_QUERY = JobListQuerySchema()
_CLIENT_UPDATE = ClientUpdateSchema()


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _check_rate(count: int, window: int, now: float) -> None:
    """``count``: this request's number in the client's ``window`` (the one ``now`` falls in,
    counted together with the client lookup, ``ClientStore.authenticate_counted``)."""
    limit = current().settings.client_rate_limit_per_minute
    if count > limit:
        retry = int((window + 1) * RATE_WINDOW_SECONDS - now) + 1
        raise ApiError(
            429,
            "rate_limited",
            "Too many requests; slow down.",
            {"retry_after": retry},
            headers={
                "Retry-After": str(retry),
                # IETF draft-ietf-httpapi-ratelimit-headers: the window's quota, what is left
                # of it, and seconds until it resets.
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry),
            },
        )


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "A valid API key is required (Authorization: Bearer ...).",
        headers={"WWW-Authenticate": "Bearer"},
    )


def authenticated(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _bearer()
        now = clock.now()
        window = int(now // RATE_WINDOW_SECONDS)
        found = (
            current().clients.authenticate_counted(
                token, lambda client_id: keys.rate_limit(client_id, window), RATE_WINDOW_SECONDS * 2
            )
            if token
            else None
        )
        if found is None:
            raise _unauthorized()
        client, count = found
        logcontext.bind(client_id=client.id)
        _check_rate(count, window, now)
        g.client = client
        return view(*args, **kwargs)

    return wrapper


def _json_body() -> Any:
    try:
        body = request.get_json(silent=True, force=True)
    except RecursionError:  # nesting deeper than the parser goes: still the client's fault
        body = None
    if body is None or not encodable(body):
        raise ApiError(400, "bad_request", "The body must be JSON.")
    return body


def _job_answer(job: dict[str, Any], created: bool) -> tuple[Response, int]:
    logcontext.bind(job_id=job["id"])
    response = jsonify(job)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return response, (202 if created else 200)


@bp.post("/jobs")
@authenticated
def create_job() -> tuple[Response, int]:
    job, created = submit_job(
        current(), g.client, _json_body(), request.headers.get("Idempotency-Key")
    )
    return _job_answer(job, created)


@bp.post("/videos/generations")
@authenticated
def create_generation() -> tuple[Response, int]:
    """aigateway.sh's and EmpirioLabs' submit (and any gateway-style flat body): see
    :mod:`orchestrator.intake.dialects.videos`. The job object answers in their words too."""
    translation = videos.translate(_json_body())
    job, created = submit_job(
        current(),
        g.client,
        translation.body,
        request.headers.get("Idempotency-Key"),
        warnings=translation.warnings,
    )
    return _job_answer(job, created)


@bp.get("/jobs/<job_id>")
@authenticated
def get_job(job_id: str) -> Response:
    return jsonify(_client_job(job_id))


def _client_job(job_id: str) -> dict[str, Any]:
    """The caller's job, or one 404 (same body) for a malformed, missing or foreign id: the
    answer never tells whether an id exists for someone else."""
    job = current().jobs.get(job_id, g.client.id)
    if job is None:
        raise ApiError(404, "not_found", NO_SUCH_JOB)
    return job


@bp.get("/jobs")
@authenticated
def list_jobs() -> Response:
    """Newest first, filtered through the narrowest index; a filter no index covers reads at
    most ``LIST_MAX_EXAMINED`` jobs (pipelined) per page, and a page that ends there early
    still carries a cursor that continues the search."""
    query = _list_query()
    svc = current()
    client_id = g.client.id
    flt = JobFilter(status=query.get("status"), client_id=client_id, model=query.get("model"))
    index, keep = index_for(flt, svc.redis)
    page = svc.jobs.list_range(
        index, query["limit"], query.get("cursor"), keep=keep, max_examined=LIST_MAX_EXAMINED
    )
    raws = svc.jobs.get_many(page.ids)
    data = [render(raw) for raw in raws if raw and raw.get("client_id") == client_id]
    return jsonify({"data": data, "next_cursor": page.next_cursor})


def _list_query() -> dict[str, Any]:
    """The list's query, validated: every bad value is a 422 naming its parameter."""
    try:
        # API.md's own template is ``?status=&model=&limit=&cursor=``: an empty value is absent.
        query = _LIST_QUERY.load({k: v for k, v in request.args.items() if v != ""})
    except ValidationError as exc:
        raise validation_error(exc.messages) from None
    if "model" in query and catalog.get_model(query["model"]) is None:
        raise validation_error({"model": ["unknown model"]})
    try:
        decode_cursor(query.get("cursor"))
    except ValueError:
        raise validation_error({"cursor": ["malformed cursor"]}) from None
    return query


@bp.post("/jobs/<job_id>/cancel")
@authenticated
def cancel_job(job_id: str) -> Response:
    svc = current()
    _client_job(job_id)
    outcome = actions.cancel(svc, job_id, actor=f"client:{g.client.id}")
    if not outcome.ok:
        raise ApiError(409, "not_cancelable", outcome.message, {"status": outcome.status})
    return jsonify(_client_job(job_id))


@bp.get("/models")
@authenticated
def list_models() -> Response:
    return jsonify({"data": catalog.describe_catalog(), "dialects": videos.describe()})


@bp.get("/client")
@authenticated
def get_client() -> Response:
    """The calling client, with its monthly budget, committed spend and the month (UTC)."""
    return jsonify(_client_answer(g.client))


def _client_answer(client: Client) -> dict[str, Any]:
    return {**client.public(), "budget": budgets.status(current().redis, client.id)}


@bp.patch("/client")
@authenticated
def update_client() -> Response:
    svc = current()
    try:
        changes = _CLIENT_UPDATE.load(_json_body())
    except ValidationError as exc:
        raise validation_error(exc.messages) from None
    url = checked_callback_url(svc, changes.get("callback_url"))
    types = changes.get("event_types")
    updated = svc.clients.update(
        g.client.id,
        callback_url=(url or "") if "callback_url" in changes else None,
        event_types=tuple(types) if types is not None else None,
    )
    if updated is None:
        # The client was deleted after its key was checked: the key names no client any more.
        raise _unauthorized()
    return jsonify(_client_answer(updated))
