"""The apiin.one dialect (``upstream-docs/gateway-apiinone-pixverse-5-6.txt``): PixVerse 5.6.

Request: ``POST /api/v1/videos/generations`` with a flat body ``{"model": "pixverse-5-6",
"prompt", "image", "resolution", "duration", "resolution_ratio", "generate_audio_switch",
"thinking_type", "negative_prompt", "seed"}`` (plus our own ``callback_url``/``metadata``).
It becomes an ordinary job of Pixazo's ``pixverse`` model, or ``pixverse-i2v`` when ``image``
is given (``image`` -> ``image_url``, ``resolution_ratio`` -> ``aspect_ratio``; an image-to-video
duration becomes the string Pixazo wants).

The page's defaults that Pixazo can honour are applied: ``resolution`` 720p, ``duration`` 5;
Pixazo's v5.6 text-to-video also requires an aspect ratio, for which the page gives no default:
16:9. Its defaults that Pixazo's v5.6 cannot honour need nothing: ``generate_audio_switch`` false
is no audio, and ``thinking_type`` "auto" means "let the model decide", which is what a model
without a thinking mode does, so both are accepted and left out. Anything the client sets that
Pixazo's v5.6 cannot honour is a 422 naming the field: ``thinking_type`` "enabled"/"disabled",
``generate_audio_switch`` true, ``seed``, ``resolution`` 360p/540p, ``duration`` 8,
``resolution_ratio`` with an image (image-to-video follows the image), a model other than
``pixverse-5-6``, and any field the page does not list.

Answers (the page shows neither shape, only "a task id" and "Check generation task status and
result"; we chose these, consistent with its wording):

* submit: ``200 {"task_id": "job_...", "id": "job_...", "status": "pending",
  "model": "pixverse-5-6"}`` -- the task id is the ordinary job id (also ``Location:
  /v1/jobs/<id>``); an Idempotency-Key replay answers the same task, also 200.
* ``GET /api/v1/tasks/{task_id}``: ``{"task_id", "id", "status", "model", "result", "error",
  "created_at", "completed_at"}`` with ``status`` one of ``pending`` (queued or accepted by
  Pixazo), ``processing``, ``completed``, ``failed``, ``canceled``; ``result`` is ``null``
  until ``completed``, then ``{"url": <video>, "urls": [...], "media_type": "video/mp4"}``;
  ``error`` is ``{"code", "message"}`` when failed or canceled, else ``null``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.core import catalog
from orchestrator.core.errors import validation_error
from orchestrator.intake.dialects.translation import (
    NOT_HONOURED,
    Translation,
    refuse,
    require_object,
    split_envelope,
    unknown_fields,
    validated,
    whole_number,
)

MODEL = "pixverse-5-6"
FIELDS = frozenset(
    {
        "model",
        "prompt",
        "image",
        "resolution",
        "duration",
        "resolution_ratio",
        "generate_audio_switch",
        "thinking_type",
        "negative_prompt",
        "seed",
    }
)
THINKING_TYPES = ("enabled", "disabled", "auto")
DEFAULT_ASPECT_RATIO = "16:9"  # Pixazo requires one; the page documents no default
DEFAULT_RESOLUTION = "720p"
DEFAULT_DURATION = 5
RENAMES = {"resolution_ratio": "aspect_ratio"}  # this dialect's spelling -> Pixazo's
# Pixazo's spelling -> this dialect's, for naming fields in refusals
DIALECT_NAMES = {"aspect_ratio": "resolution_ratio", "image_url": "image"}

STATUS_WORDS = {
    "queued": "pending",
    "submitted": "pending",
    "processing": "processing",
    "completed": "completed",
    "failed": "failed",
    "canceled": "canceled",
}


def to_job(body: Any) -> Translation:
    """An apiin.one request body as an ordinary job request; raises ApiError (400/422)."""
    flat = require_object(body)
    envelope = split_envelope(flat)
    errors = unknown_fields(flat, FIELDS, MODEL)
    model = flat.pop("model", None)
    if model is None:
        errors["model"] = ["Missing data for required field."]
    elif model != MODEL:
        errors["model"] = [f"only {MODEL!r} is served on this route"]
    if errors:
        raise validation_error(errors)
    _drop_unhonourable_defaults(flat)
    if "seed" in flat:
        raise refuse("seed", NOT_HONOURED.format(reason="PixVerse v5.6 takes no seed"))
    image = flat.pop("image", None)
    model_input: dict[str, Any] = {RENAMES.get(k, k): whole_number(v) for k, v in flat.items()}
    model_input.setdefault("resolution", DEFAULT_RESOLUTION)
    model_input.setdefault("duration", DEFAULT_DURATION)
    if image is None:
        model_id = catalog.V56_T2V
        model_input.setdefault("aspect_ratio", DEFAULT_ASPECT_RATIO)
    else:
        model_id = catalog.V56_I2V
        if "aspect_ratio" in model_input:
            reason = "image-to-video follows the image's aspect ratio"
            raise refuse("resolution_ratio", NOT_HONOURED.format(reason=reason))
        model_input["image_url"] = image
        duration = model_input["duration"]
        if isinstance(duration, int) and not isinstance(duration, bool):
            model_input["duration"] = str(duration)
    return Translation(model_id, validated(model_id, model_input, DIALECT_NAMES), envelope)


def _drop_unhonourable_defaults(flat: dict[str, Any]) -> None:
    """``thinking_type`` "auto" and ``generate_audio_switch`` false ask for nothing Pixazo's
    v5.6 lacks and are left out; any other value of either is refused, naming the field."""
    if "thinking_type" in flat:
        thinking = flat.pop("thinking_type")
        if thinking not in THINKING_TYPES:
            raise refuse("thinking_type", f"must be one of: {', '.join(THINKING_TYPES)}")
        if thinking != "auto":
            reason = 'PixVerse v5.6 has no thinking mode; only "auto" (the model decides)'
            raise refuse("thinking_type", NOT_HONOURED.format(reason=reason))
    if "generate_audio_switch" in flat:
        audio = flat.pop("generate_audio_switch")
        if not isinstance(audio, bool):
            raise refuse("generate_audio_switch", "must be true or false")
        if audio:
            reason = "PixVerse v5.6 generates no audio"
            raise refuse("generate_audio_switch", NOT_HONOURED.format(reason=reason))


def dialect_model(job: dict[str, Any]) -> str:
    return MODEL if job["model"] in (catalog.V56_T2V, catalog.V56_I2V) else job["model"]


def submitted(job: dict[str, Any]) -> dict[str, Any]:
    """The submit answer."""
    return {
        "task_id": job["id"],
        "id": job["id"],
        "status": STATUS_WORDS[job["status"]],
        "model": dialect_model(job),
    }


def task(job: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/v1/tasks/{task_id}``'s answer for one ordinary job."""
    status = STATUS_WORDS[job["status"]]
    urls = list((job.get("output") or {}).get("media_url") or [])
    result = None
    if status == "completed" and urls:
        media_type = (job.get("output") or {}).get("media_type", "video/mp4")
        result = {"url": urls[0], "urls": urls, "media_type": media_type}
    error = job.get("error") if status in ("failed", "canceled") else None
    return {
        "task_id": job["id"],
        "id": job["id"],
        "status": status,
        "model": dialect_model(job),
        "result": result,
        "error": error,
        "created_at": job["created_at"],
        "completed_at": job.get("completed_at"),
    }
