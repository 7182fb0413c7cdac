"""Turning a client's request into a stored, queued job.

Validation happens entirely before anything is written: a request that fails it changes
nothing and enqueues nothing. The submit task is enqueued only after the job is stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from marshmallow import ValidationError

from orchestrator.core import budgets, catalog, enqueue
from orchestrator.core.clients import Client
from orchestrator.core.errors import ApiError, validation_error
from orchestrator.core.services import Services
from orchestrator.core.urls import UnsafeUrl, check_consumer_url
from orchestrator.intake.schemas import MAX_IDEMPOTENCY_KEY, JobCreateSchema
from orchestrator.jobs.store import NewJob

_CREATE_SCHEMA = JobCreateSchema()


def parse_job_request(svc: Services, body: Any) -> NewJob:
    """Raises ApiError(422) with field paths such as ``input.duration``."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    try:
        data = _CREATE_SCHEMA.load(body)
    except ValidationError as exc:
        raise validation_error(exc.messages) from None
    spec = catalog.get_model(data["model"])
    if spec is None:
        raise validation_error({"model": [f"unknown model {data['model']!r}; see /v1/models"]})
    try:
        model_input = catalog.validate_input(spec.id, data["input"])
    except ValidationError as exc:
        raise validation_error(exc.messages, "input") from None
    callback_url = checked_callback_url(svc, data.get("callback_url"))
    return NewJob(
        client_id="",
        model=spec.id,
        input=model_input,
        metadata=data["metadata"],
        callback_url=callback_url,
        estimated_cost_usd=catalog.estimate_cost_usd(spec.id, model_input),
        webhook_mode=svc.settings.pixazo_webhook_mode,
    )


def checked_callback_url(svc: Services, url: str | None) -> str | None:
    """A consumer URL a client gave us, refused (422) when we may not call it (SSRF)."""
    if url:
        try:
            check_consumer_url(url, svc.settings.allow_http)
        except UnsafeUrl as exc:
            raise validation_error({"callback_url": [str(exc)]}) from None
    return url


def fingerprint(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise validation_error(
            {"Idempotency-Key": [f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"]}
        )
    return value


def submit_job(
    svc: Services,
    client: Client,
    body: Any,
    idempotency_key: str | None,
    warnings: list[dict[str, str]] | None = None,
) -> tuple[dict[str, Any], bool]:
    """(job object, created?) — created is False when the idempotency key replays a job.
    ``warnings`` (from a gateway dialect) are stored with the job."""
    key = check_idempotency_key(idempotency_key)
    request = parse_job_request(svc, body)
    new = NewJob(**{**request.__dict__, "client_id": client.id, "warnings": tuple(warnings or ())})
    # The fingerprint only ever meets a replayed key: without one, nothing compares it.
    result = svc.jobs.create(new, idempotency_key=key, fingerprint=fingerprint(body) if key else "")
    if result.refused is not None:
        raise budget_exceeded(result.refused)
    if not result.created:
        if not result.fingerprint_matches:
            raise ApiError(
                409,
                "idempotency_conflict",
                "This Idempotency-Key was used with a different request body.",
                {"job_id": result.job_id},
            )
        existing = svc.jobs.get(result.job_id, client.id)
        if existing is None:  # expired under the key: behave as a fresh request would
            raise ApiError(409, "idempotency_conflict", "The job of this key no longer exists.")
        return existing, False
    # The answer is the job as the create step stored it, not read back after the submit is
    # enqueued: once it is, a fast worker may move the job on, and a 202 must still say
    # "queued" (the state it was accepted in).
    created = result.job
    enqueue.submit(result.job_id)
    if result.period is not None:
        budgets.warn_if_near(
            svc.redis, client.id, result.budget_micros, result.committed_micros, result.period
        )
    return created, True  # type: ignore[return-value]


BUDGET_EXCEEDED = "budget_exceeded"


def budget_exceeded(refusal: budgets.Refusal) -> ApiError:
    """402 in our error shape; ``details``: ``budget_usd``, ``committed_usd``, ``job_usd``."""
    return ApiError(402, BUDGET_EXCEEDED, refusal.message(), refusal.details())
