"""The shared ``POST /v1/videos/generations`` route: a gateway's flat body as a /v1/jobs body.

aigateway.sh and EmpirioLabs (and older gateway clients) post here. Every gateway's parameter
names and value forms are understood where they mean something Pixazo can do:

- ``aspect_ratio`` / ``resolution_ratio``; ``audio`` / ``generate_audio`` /
  ``generate_audio_switch``; ``thinking`` / ``thinking_type``; ``image`` / ``image_url``;
  ``generate_multi_clip`` / ``generate_multi_clip_switch`` (one spelling per request);
- ``mode: t2v | i2v`` picks the model of the family (``i2v`` needs an image, ``t2v`` takes none);
  without it, an image picks image-to-video;
- ``duration: "5s"`` is 5 seconds; ``style: "none"`` is no style; ``image_end: null`` is no
  end frame; ``thinking: "auto"`` on a model that takes no thinking mode lets the model decide,
  which is what it does, so it is accepted and not sent; ``audio: false`` there likewise.

A value the client sets that Pixazo cannot honour is a 422 naming the client's own field and why
(``audio: true`` on v5.6, ``duration: "8s"``, a thinking mode other than ``auto`` where Pixazo has
none, any ``image_end``, a style or seed where the model takes none). Pixazo's own rules are then
checked by the catalog, as for /v1/jobs (paths ``input.<field>``). A gateway default Pixazo can
honour is filled in, one it cannot is left out and reported in ``warnings`` (see the dialect
modules, which also say how a request is recognised as theirs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core import catalog
from orchestrator.core.errors import ApiError, validation_error
from orchestrator.intake.dialects import aigateway, empiriolabs

ROUTE = "/v1/videos/generations"
ENVELOPE = ("callback_url", "metadata")
MODES = {"t2v": catalog.TEXT_TO_VIDEO, "i2v": catalog.IMAGE_TO_VIDEO}
NO_STYLE = "none"
LET_THE_MODEL_DECIDE = "auto"
_SECONDS = re.compile(r"^\s*(\d{1,3})\s*s\s*$")

# Pixazo's field -> every spelling a gateway uses for it (Pixazo's own first).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "image_url": ("image_url", "image"),
    "aspect_ratio": ("aspect_ratio", "resolution_ratio"),
    "generate_audio_switch": ("generate_audio_switch", "generate_audio", "audio"),
    "generate_multi_clip_switch": ("generate_multi_clip_switch", "generate_multi_clip"),
    "thinking_type": ("thinking_type", "thinking"),
}
_PIXAZO_NAME = {spelling: name for name, spellings in SYNONYMS.items() for spelling in spellings}
# Pixazo's v5.6 models require fields that the gateways treat as optional (their examples send
# only model and prompt): filled with the gateways' common defaults unless a dialect has its own.
COMMON_DEFAULTS: dict[str, dict[str, Any]] = {
    catalog.V56_T2V: {"aspect_ratio": "16:9", "resolution": "720p", "duration": 5},
    catalog.V56_I2V: {"resolution": "720p", "duration": "5"},
}
# Fields a gateway documents that some Pixazo models do not take: refused with a reason there.
_GATEWAY_FIELDS = ("aspect_ratio", "style", "seed", "generate_multi_clip_switch")


@dataclass
class Translation:
    """What the route stores: a /v1/jobs body and the warnings that go with the job."""

    body: dict[str, Any]
    warnings: list[dict[str, str]] = field(default_factory=list)


def translate(body: Any) -> Translation:
    """Raises ApiError (400 not an object, 422 naming fields) before anything is stored."""
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    flat = {k: v for k, v in body.items() if k not in ENVELOPE}
    envelope = {k: body[k] for k in ENVELOPE if k in body}
    if not isinstance(flat.get("model"), str):
        raise validation_error({"model": ["Missing data for required field."]})
    errors: dict[str, list[str]] = {}
    spellings = _spellings(flat, errors)
    spec = _model(flat, spellings, errors)
    if errors or spec is None:
        raise validation_error(errors)
    model_input, warnings = _input(spec, flat, spellings, errors)
    if errors:
        raise validation_error(errors)
    return Translation({"model": spec.id, "input": model_input, **envelope}, warnings)


def _spellings(flat: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, str]:
    """Pixazo field -> the client's spelling of it; two spellings of one field are refused.
    A null image is no image (some SDKs send every field)."""
    chosen: dict[str, str] = {}
    for key, value in flat.items():
        name = _PIXAZO_NAME.get(key)
        if name is None or (name == "image_url" and value is None):
            continue
        if name in chosen:
            message = [f"Give either {chosen[name]} or {key}, not both."]
            errors[key] = errors[chosen[name]] = message
        else:
            chosen[name] = key
    return chosen


def _model(
    flat: dict[str, Any], spellings: dict[str, str], errors: dict[str, list[str]]
) -> catalog.ModelSpec | None:
    has_image = "image_url" in spellings
    mode = flat.get("mode")
    if mode is not None:
        if mode not in MODES:
            errors["mode"] = ["Must be one of: t2v, i2v."]
            return None
        if mode == "i2v" and not has_image:
            errors["image"] = ["Required for mode i2v: the image to animate."]
        if mode == "t2v" and has_image:
            errors["mode"] = ["mode t2v takes no image; use mode i2v to animate an image."]
    model_id = catalog.resolve_alias(flat["model"], has_image=has_image)
    spec = catalog.get_model(model_id) if model_id else None
    if spec is None:
        known = ", ".join(sorted([*catalog.MODELS, *catalog.alias_names()]))
        errors["model"] = [f"Unknown model {flat['model']!r}; use one of: {known}."]
    elif mode is not None and not errors and spec.kind != MODES[mode]:
        errors["mode"] = [f"mode {mode} does not match model {spec.id} ({spec.kind})."]
    return spec


def _input(
    spec: catalog.ModelSpec,
    flat: dict[str, Any],
    spellings: dict[str, str],
    errors: dict[str, list[str]],
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    takes = {param.name for param in spec.parameters}
    model_input: dict[str, Any] = {}
    for key, value in flat.items():
        if key in ("model", "mode") or (key in SYNONYMS["image_url"] and value is None):
            continue
        name = _PIXAZO_NAME.get(key, key)
        kept = _value(spec, takes, key, name, value, errors)
        if kept is not _DROP:
            model_input[name] = kept
    warnings: list[dict[str, str]] = []
    if empiriolabs.recognises(flat):
        fill, warnings = empiriolabs.defaults(spec.id, flat)
        for name, value in fill.items():
            model_input.setdefault(name, value)
    for name, value in COMMON_DEFAULTS.get(spec.id, {}).items():
        model_input.setdefault(name, value)
    return model_input, warnings


_DROP: Any = object()


def _value(
    spec: catalog.ModelSpec,
    takes: set[str],
    key: str,
    name: str,
    value: Any,
    errors: dict[str, list[str]],
) -> Any:
    """The value Pixazo gets for one client field, ``_DROP`` when it gets none, or an error."""
    if key == "image_end":
        if value is not None:
            errors[key] = [
                "Pixazo's PixVerse models take no end frame; leave image_end out or null."
            ]
        return _DROP
    if name == "style" and value == NO_STYLE:
        return _DROP
    if name == "duration":
        return _duration(spec, key, value, errors)
    if name in takes:
        return value
    if name == "generate_audio_switch":
        if value is False:
            return _DROP
        errors[key] = [f"{spec.title} on Pixazo generates no audio; leave {key} out or false."]
        return _DROP
    if name == "thinking_type":
        if value == LET_THE_MODEL_DECIDE:
            return _DROP
        errors[key] = [
            f"{spec.title} on Pixazo has no thinking mode; only {LET_THE_MODEL_DECIDE!r} "
            "(let the model decide) is accepted."
        ]
        return _DROP
    if name in _GATEWAY_FIELDS:
        errors[key] = [f"{spec.title} on Pixazo takes no {key}; leave it out."]
        return _DROP
    return value  # unknown to every gateway: the catalog names it (input.<field>)


def _duration(spec: catalog.ModelSpec, key: str, value: Any, errors: dict[str, list[str]]) -> Any:
    """``"5s"`` (EmpirioLabs) is 5 seconds; v5.6 image-to-video takes its duration as a string.
    A seconds form the model does not offer is refused here, naming what it offers."""
    seconds = _SECONDS.match(value) if isinstance(value, str) else None
    if seconds is None:
        if spec.id == catalog.V56_I2V and isinstance(value, int) and not isinstance(value, bool):
            return str(value) if str(value) in catalog.DURATIONS_V56_I2V else value
        return value
    number = int(seconds.group(1))
    offered = _offered_durations(spec)
    if number not in offered:
        listed = ", ".join(str(n) for n in offered)
        errors[key] = [
            f"{value!r} is not offered by {spec.title} on Pixazo; durations: {listed} s."
        ]
        return _DROP
    return str(number) if spec.id == catalog.V56_I2V else number


def _offered_durations(spec: catalog.ModelSpec) -> tuple[int, ...]:
    if spec.id == catalog.V56_T2V:
        return catalog.DURATIONS_V56_T2V
    if spec.id == catalog.V56_I2V:
        return tuple(int(n) for n in catalog.DURATIONS_V56_I2V)
    return tuple(range(catalog.MIN_DURATION_SECONDS, catalog.MAX_DURATION_SECONDS + 1))


def describe() -> list[dict[str, Any]]:
    """The dialects this route serves and their model names, for ``GET /v1/models``."""
    return [
        {
            "name": dialect.NAME,
            "route": dialect.ROUTE,
            "aliases": [
                {"alias": alias, "text_to_video": t2v, "image_to_video": i2v}
                for alias, (t2v, i2v) in dialect.MODEL_NAMES.items()
            ],
        }
        for dialect in (aigateway, empiriolabs)
    ]
