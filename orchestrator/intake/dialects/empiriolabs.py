"""EmpirioLabs (``gateway-empiriolabs-pixverse-v5-6.txt``): ``POST /v1/videos/generations`` with
``model: "pixverse-v5-6"`` answers a ``job_id``; its Python sample polls ``GET /v1/jobs/{job_id}``
until ``status`` is ``completed`` or ``failed``.

How a request is recognised as EmpirioLabs': by its model name, ``pixverse-v5-6`` (EmpirioLabs'
model ID; aigateway.sh says ``pixverse/v5.6``, apiin.one ``pixverse-5-6``). Only then are its
defaults applied. Its parameter *forms* (``mode``, ``audio``, ``thinking``, ``image_end``,
``style: "none"``, ``duration: "5s"``) are understood on the shared route whatever the model name,
since they mean the same on every gateway; but a bare ``{"model", "prompt"}`` body can only be
told apart by the name, and EmpirioLabs' defaults differ from the others' (1080p, not 720p).

Its documented defaults (parameter table): mode t2v, resolution 1080p, aspect_ratio 16:9,
duration 5s, audio true, style none, thinking auto. Pixazo's v5.6 can honour 1080p, 16:9 (text-to-
video only) and 5 s, so those are applied; style none and thinking auto are what Pixazo does when
the field is absent. Audio it cannot honour (Pixazo's v5.6 makes no audio), nor 16:9 on image-to-
video (the video keeps the image's ratio): those defaults are left out and said so in the job's
``warnings``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.core import catalog

NAME = "EmpirioLabs"
ROUTE = "POST /v1/videos/generations, GET /v1/jobs/{job_id}"
MODEL_NAMES: dict[str, tuple[str, str]] = {"pixverse-v5-6": (catalog.V56_T2V, catalog.V56_I2V)}

DEFAULT_RESOLUTION = "1080p"
DEFAULT_ASPECT_RATIO = "16:9"
DEFAULT_DURATION_SECONDS = 5
AUDIO_FIELDS = ("audio", "generate_audio", "generate_audio_switch")
ASPECT_FIELDS = ("aspect_ratio", "resolution_ratio")

AUDIO_WARNING = (
    "EmpirioLabs' default audio=true is not applied: Pixazo's PixVerse v5.6 generates no audio, "
    "so the video is silent."
)
ASPECT_WARNING = (
    "EmpirioLabs' default aspect_ratio=16:9 is not applied: Pixazo's PixVerse v5.6 "
    "image-to-video keeps the aspect ratio of the image."
)


def recognises(body: dict[str, Any]) -> bool:
    """The rule of the module docstring: EmpirioLabs' model ID, however it is cased or padded."""
    model = body.get("model")
    return isinstance(model, str) and model.strip().lower() in MODEL_NAMES


def defaults(model_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(Pixazo fields to fill where the client gave none, warnings) for the fields ``body``
    leaves out. ``model_id`` is a v5.6 model (the only ones EmpirioLabs' name resolves to)."""
    fill: dict[str, Any] = {"resolution": DEFAULT_RESOLUTION}
    warnings: list[dict[str, str]] = []
    if model_id == catalog.V56_I2V:
        fill["duration"] = str(DEFAULT_DURATION_SECONDS)
        if not any(name in body for name in ASPECT_FIELDS):
            warnings.append({"field": "aspect_ratio", "message": ASPECT_WARNING})
    else:
        fill["duration"] = DEFAULT_DURATION_SECONDS
        fill["aspect_ratio"] = DEFAULT_ASPECT_RATIO
    if not any(name in body for name in AUDIO_FIELDS):
        warnings.append({"field": "audio", "message": AUDIO_WARNING})
    return fill, warnings
