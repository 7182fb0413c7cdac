"""The skills.video dialect (``upstream-docs/gateway-skillsvideo-pixverse-v6.txt``): PixVerse V6.

Request: ``POST /api/v1/generation/pixverse/v6`` (the model is in the path; there is no
``model`` field) with ``{"prompt", "feature", "resolution", "duration", "negative_prompt",
"style", "seed", "generate_audio", "image_url", "aspect_ratio", "generate_multi_clip",
"thinking_type"}`` (plus our own ``callback_url``/``metadata``). Without ``image_url`` it is an
ordinary job of Pixazo's ``pixverse-v6-text-to-video``; with it, ``pixverse-v6-image-to-video``.
``generate_audio``/``generate_multi_clip`` become Pixazo's ``*_switch`` fields; ``feature`` must
be "text-image" (the only value the page allows; the first/last-frame and extension workflows
are not offered) and is not sent on. ``duration`` is a number 1-15; 5.0 is taken as 5.

The page's defaults are applied where Pixazo honours them (720p, 5 s, 16:9, no audio, no
multi-clip, thinking "auto"). Pixazo's image-to-video has no aspect ratio: the default 16:9 is
left out and said so in the job's ``warnings`` (``{"field", "message"}``, also in this
dialect's answers); an explicit ``aspect_ratio`` with an image is a 422 naming it, as is any
value Pixazo cannot honour (e.g. ``resolution`` 540p with an image, where Pixazo offers 480p)
and any field the page does not list (its ``{key}: any`` passes nothing we could honour).
``n`` (shown in the page's normalised input) may be 1: one video per generation is what Pixazo
makes; any other value is refused.

Answers: ``200 {"id": "job_...", "status": "IN_QUEUE", "input": {...}, "usage": {...}}`` as the
page shows. ``input`` is the normalised input in this dialect's spelling with ``"n": 1``.
``usage`` has the page's ``total``/``subscription``/``permanent`` credit counts, all 0 because
we sell no credits (jobs are charged by Pixazo), plus ``estimated_cost_usd`` (or null).
The id is the ordinary job id. The page shows no poll route; skills.video's API polls
``GET /api/v1/generation/{id}``, which answers the same object with the current status:
``IN_QUEUE`` (queued or accepted by Pixazo), ``IN_PROGRESS``, ``COMPLETED``, ``FAILED`` (with
``code`` and ``message``), ``CANCELED``; once ``COMPLETED`` it also carries ``output``:
``{"url": <video>, "urls": [...], "media_type": "video/mp4"}`` (``null`` before).
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

MODEL = "pixverse/v6"
FIELDS = frozenset(
    {
        "prompt",
        "feature",
        "resolution",
        "duration",
        "negative_prompt",
        "style",
        "seed",
        "generate_audio",
        "image_url",
        "aspect_ratio",
        "generate_multi_clip",
        "thinking_type",
        "n",
    }
)
FEATURES = ("text-image",)
RENAMES = {
    "generate_audio": "generate_audio_switch",
    "generate_multi_clip": "generate_multi_clip_switch",
}
DIALECT_NAMES = {pixazo: dialect for dialect, pixazo in RENAMES.items()}
DEFAULTS: dict[str, dict[str, Any]] = {
    catalog.V6_T2V: {
        "resolution": "720p",
        "duration": 5,
        "aspect_ratio": "16:9",
        "negative_prompt": "",
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
        "thinking_type": "auto",
    },
    catalog.V6_I2V: {
        "resolution": "720p",
        "duration": 5,
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
        "thinking_type": "auto",
    },
}
ASPECT_RATIO_LEFT_OUT = {
    "field": "aspect_ratio",
    "message": "the default 16:9 is not applied: Pixazo's image-to-video follows the image",
}

STATUS_WORDS = {
    "queued": "IN_QUEUE",
    "submitted": "IN_QUEUE",
    "processing": "IN_PROGRESS",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "canceled": "CANCELED",
}


def to_job(body: Any) -> Translation:
    """A skills.video PixVerse V6 body as an ordinary job request; raises ApiError (400/422)."""
    flat = require_object(body)
    envelope = split_envelope(flat)
    errors = unknown_fields(flat, FIELDS, MODEL)
    if errors:
        raise validation_error(errors)
    if "feature" in flat:
        feature = flat.pop("feature")
        if feature not in FEATURES:
            reason = 'only "text-image" (text- or image-to-video) is offered'
            raise refuse("feature", NOT_HONOURED.format(reason=reason))
    if "n" in flat:
        count = whole_number(flat.pop("n"))
        if isinstance(count, bool) or count != 1:
            raise refuse("n", NOT_HONOURED.format(reason="one video per generation"))
    if flat.get("image_url") is None:
        flat.pop("image_url", None)
        model_id = catalog.V6_T2V
    else:
        model_id = catalog.V6_I2V
    warnings: tuple[dict[str, str], ...] = ()
    if model_id == catalog.V6_I2V:
        if "aspect_ratio" in flat:
            reason = "Pixazo's image-to-video follows the image's aspect ratio"
            raise refuse("aspect_ratio", NOT_HONOURED.format(reason=reason))
        warnings = (ASPECT_RATIO_LEFT_OUT,)
    model_input = {RENAMES.get(k, k): whole_number(v) for k, v in flat.items()}
    for name, value in DEFAULTS[model_id].items():
        model_input.setdefault(name, value)
    normalised = validated(model_id, model_input, DIALECT_NAMES)
    return Translation(model_id, normalised, envelope, warnings)


def dialect_input(model_input: dict[str, Any]) -> dict[str, Any]:
    """A stored (Pixazo-spelled) input in this dialect's spelling, with the page's ``n``."""
    return {**{DIALECT_NAMES.get(k, k): v for k, v in model_input.items()}, "n": 1}


def generation(job: dict[str, Any]) -> dict[str, Any]:
    """The submit answer and ``GET /api/v1/generation/{id}``'s answer for one ordinary job."""
    status = STATUS_WORDS[job["status"]]
    answer: dict[str, Any] = {
        "id": job["id"],
        "status": status,
        "input": dialect_input(job.get("input") or {}),
        "usage": {
            "total": 0,
            "subscription": 0,
            "permanent": 0,
            "estimated_cost_usd": job.get("estimated_cost_usd"),
        },
    }
    output = job.get("output") or {}
    urls = list(output.get("media_url") or [])
    answer["output"] = (
        {"url": urls[0], "urls": urls, "media_type": output.get("media_type", "video/mp4")}
        if status == "COMPLETED" and urls
        else None
    )
    if status == "FAILED":
        error = job.get("error") or {}
        answer["code"] = error.get("code") or "upstream_failed"
        answer["message"] = error.get("message") or "The generation failed."
    if job.get("warnings"):
        answer["warnings"] = job["warnings"]
    return answer
