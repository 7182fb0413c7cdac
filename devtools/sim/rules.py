"""Pixazo's per-model request rules, as the simulator states them: routes, fields, types, allowed
values, ranges, the defaults Pixazo applies, and the documented irregularities.

Transcribed from Pixazo's own documentation (``shared/upstream-docs/pixazo-pixverse-api.txt``,
the "Request Parameters - ..." table and the "Request Code" route of each model's
"... API Documentation" section), never imported from the product's catalog: the simulator is the
double the product is tested against, so a catalog mistake must be able to show up here as a
refusal. ``tests/devtools/sim/test_rules.py`` cross-checks the two.

Where the documentation is silent, the rules below make one choice each and say so:

- unknown body fields are refused (a field the model does not take cannot be honoured; refusing it
  is how a client sending one finds out);
- ``null`` is not a value of any documented type, so it is refused like any other wrong type;
- a required string that is empty or blank counts as missing;
- "integer" means a JSON integer: ``5.0``, ``"5"`` and ``true`` are refused;
- an ``image_url`` must be an absolute http(s) URL whose host has a dot ("publicly accessible");
  the image format is not checked at submit time (Pixazo can only know it after fetching).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

STRING = "string"
INTEGER = "integer"
BOOLEAN = "boolean"


class _Missing:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _Missing()


@dataclass(frozen=True)
class FieldRule:
    """One body field of one model, as its "Request Parameters" row documents it."""

    name: str
    type: str  # STRING | INTEGER | BOOLEAN
    required: bool = False
    default: Any = NO_DEFAULT  # the value Pixazo applies when the field is absent
    allowed: tuple[Any, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    url: bool = False  # must be an absolute http(s) URL

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@dataclass(frozen=True)
class ModelRules:
    model_id: str  # also the request_id prefix and the model_id of status bodies
    route: str  # POST path under https://gateway.pixazo.ai
    doc_section: str  # the upstream doc section the rules were transcribed from
    fields: tuple[FieldRule, ...]

    def field(self, name: str) -> FieldRule | None:
        return next((rule for rule in self.fields if rule.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.fields)


# --- value sets, each as one doc table states it ------------------------------------------------

# "Request Parameters - PixVerse v6 Text to Video generate request" / "... C1 Text to Video ...":
# aspect_ratio "16:9", "4:3", "1:1", "3:4", "9:16", "2:3", "3:2", "21:9" (default "16:9")
ASPECT_RATIOS_V6_C1 = ("16:9", "4:3", "1:1", "3:4", "9:16", "2:3", "3:2", "21:9")
# "Request Parameters - Pixverse generate request" (v5.6 t2v): "16:9", "9:16", "1:1", "4:3", "3:4"
ASPECT_RATIOS_V56 = ("16:9", "9:16", "1:1", "4:3", "3:4")
# v6 t2v, c1 t2v and c1 i2v tables: "360p", "540p", "720p", "1080p" (default "720p")
RESOLUTIONS_540 = ("360p", "540p", "720p", "1080p")
# Irregularity: the v6 i2v table lists `480p` where every other model lists 540p (and the v6
# i2v pricing table of the same page says 540p).
RESOLUTIONS_V6_I2V = ("360p", "480p", "720p", "1080p")
# Irregularity: v5.6 t2v offers 2160p, and has no default (resolution is required).
RESOLUTIONS_V56_T2V = ("720p", "1080p", "2160p")
RESOLUTIONS_V56_I2V = ("720p", "1080p")
# "1-15 (seconds) ... Must be between 1 and 15 inclusive" (v6 and c1 tables, default 5)
DURATION_MIN, DURATION_MAX, DURATION_DEFAULT = 1, 15, 5
# v5.6 t2v: an integer, one of 3, 5, 7, 10, required
DURATIONS_V56_T2V = (3, 5, 7, 10)
# Irregularity: v5.6 i2v takes duration as a *string*, "5" or "10", required.
DURATIONS_V56_I2V = ("5", "10")
# "anime", "3d_animation", "clay", "comic", "cyberpunk" (v6 t2v, v6 i2v, c1 t2v; not c1 i2v)
STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
# "enabled", "disabled", "auto"; no default documented except v6 i2v ("auto")
THINKING_TYPES = ("enabled", "disabled", "auto")
URL_SCHEMES = ("http", "https")


def _prompt() -> FieldRule:
    return FieldRule("prompt", STRING, required=True)


def _image_url() -> FieldRule:
    return FieldRule("image_url", STRING, required=True, url=True)


def _duration_1_15() -> FieldRule:
    return FieldRule(
        "duration", INTEGER, default=DURATION_DEFAULT, minimum=DURATION_MIN, maximum=DURATION_MAX
    )


def _text_to_video_v6_c1() -> tuple[FieldRule, ...]:
    """The v6 t2v and c1 t2v tables are identical, row for row."""
    return (
        FieldRule("prompt", STRING, required=True),
        FieldRule("negative_prompt", STRING, default=""),
        FieldRule("aspect_ratio", STRING, default="16:9", allowed=ASPECT_RATIOS_V6_C1),
        FieldRule("resolution", STRING, default="720p", allowed=RESOLUTIONS_540),
        _duration_1_15(),
        FieldRule("style", STRING, allowed=STYLES),
        FieldRule("seed", INTEGER),
        FieldRule("generate_audio_switch", BOOLEAN, default=False),
        FieldRule("generate_multi_clip_switch", BOOLEAN, default=False),
        FieldRule("thinking_type", STRING, allowed=THINKING_TYPES),
    )


_RULES = (
    ModelRules(
        "pixverse-v6-text-to-video",
        # "Request Code": POST https://gateway.pixazo.ai/pixverse-v6-text-to-video/v1/...-request
        "/pixverse-v6-text-to-video/v1/pixverse-v6-text-to-video-request",
        "Pixverse v6 Text to Video API Documentation / Request Parameters - PixVerse v6 Text to "
        "Video generate request",
        _text_to_video_v6_c1(),
    ),
    ModelRules(
        "pixverse-v6-image-to-video",
        # "Request Code" shows only "POST /pixverse-v6-image-to-video-request" under the base
        # https://gateway.pixazo.ai/pixverse-v6-image-to-video/v1; the samples' url is the full path
        "/pixverse-v6-image-to-video/v1/pixverse-v6-image-to-video-request",
        "Pixverse v6 Image to Video API Documentation / Request Parameters - PixVerse V6 Image to "
        "Video generate request",
        (
            _prompt(),
            FieldRule("resolution", STRING, default="720p", allowed=RESOLUTIONS_V6_I2V),
            _duration_1_15(),
            # documented with no default here ("—"), unlike the t2v tables' ""
            FieldRule("negative_prompt", STRING),
            _image_url(),  # "a JPEG, PNG, or WebP image"
            FieldRule("style", STRING, allowed=STYLES),
            FieldRule("seed", INTEGER),
            FieldRule("generate_audio_switch", BOOLEAN, default=False),
            FieldRule("generate_multi_clip_switch", BOOLEAN, default=False),
            # Irregularity: the only table with a thinking_type default ("auto")
            FieldRule("thinking_type", STRING, default="auto", allowed=THINKING_TYPES),
        ),
    ),
    ModelRules(
        "pixverse-c1-text-to-video",
        "/pixverse-c1-text-to-video/v1/pixverse-c1-text-to-video-request",
        "Pixverse c1 Text to Video API Documentation / Request Parameters - PixVerse C1 Text to "
        "Video generate request",
        _text_to_video_v6_c1(),
    ),
    ModelRules(
        "pixverse-c1-image-to-video",
        "/pixverse-c1-image-to-video/v1/pixverse-c1-image-to-video-request",
        "Pixverse c1 Image to Video API Documentation / Request Parameters - PixVerse C1 Image to "
        "Video generate request",
        # Irregularity: no negative_prompt, aspect_ratio, style, multi-clip or thinking_type.
        (
            _prompt(),
            _image_url(),  # "jpg, jpeg, png, webp, gif, avif"
            FieldRule("resolution", STRING, default="720p", allowed=RESOLUTIONS_540),
            _duration_1_15(),
            FieldRule("seed", INTEGER),
            FieldRule("generate_audio_switch", BOOLEAN, default=False),
        ),
    ),
    ModelRules(
        "pixverse",
        # Base https://gateway.pixazo.ai/pixverse/v1 + "POST /pixverse-request"
        "/pixverse/v1/pixverse-request",
        "Pixverse v5.6 Text to Video API Documentation / Request Parameters - Pixverse generate "
        "request",
        # Irregularity: aspect_ratio, resolution and duration are required, with no defaults.
        (
            _prompt(),
            FieldRule("aspect_ratio", STRING, required=True, allowed=ASPECT_RATIOS_V56),
            FieldRule("resolution", STRING, required=True, allowed=RESOLUTIONS_V56_T2V),
            FieldRule("duration", INTEGER, required=True, allowed=DURATIONS_V56_T2V),
            FieldRule("negative_prompt", STRING),
        ),
    ),
    ModelRules(
        "pixverse-i2v",
        "/pixverse-i2v/v1/pixverse-i2v-request",
        "Pixverse v5.6 Image to Video API Documentation / Request Parameters - Pixverse i2v "
        "generate request",
        (
            _prompt(),
            FieldRule("resolution", STRING, required=True, allowed=RESOLUTIONS_V56_I2V),
            FieldRule("duration", STRING, required=True, allowed=DURATIONS_V56_I2V),
            FieldRule("negative_prompt", STRING),
            _image_url(),  # "Must be a valid HTTP/HTTPS link"
        ),
    ),
)

MODELS: Mapping[str, ModelRules] = {rules.model_id: rules for rules in _RULES}


# --- checking a body -----------------------------------------------------------------------------


def _type_problem(rule: FieldRule, value: Any) -> str | None:
    if value is None:
        return "Field may not be null."
    if rule.type == STRING and not isinstance(value, str):
        return "Not a valid string."
    if rule.type == INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
        return "Not a valid integer."
    if rule.type == BOOLEAN and not isinstance(value, bool):
        return "Not a valid boolean."
    return None


def _url_problem(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in URL_SCHEMES or not host or "." not in host:
        return "Not a valid URL."
    if any(char.isspace() for char in value):
        return "Not a valid URL."
    return None


def _value_problem(rule: FieldRule, value: Any) -> str | None:
    problem = _type_problem(rule, value)
    if problem is not None:
        return problem
    if rule.required and rule.type == STRING and not value.strip():
        return "Missing data for required field."
    if rule.url:
        problem = _url_problem(value)
        if problem is not None:
            return problem
    if rule.allowed is not None and value not in rule.allowed:
        return "Must be one of: " + ", ".join(map(str, rule.allowed)) + "."
    if rule.minimum is not None and value < rule.minimum:
        return f"Must be between {rule.minimum} and {rule.maximum} inclusive."
    if rule.maximum is not None and value > rule.maximum:
        return f"Must be between {rule.minimum} and {rule.maximum} inclusive."
    return None


def body_problems(model_id: str, body: object) -> dict[str, str]:
    """Every problem of one submit body, by field name; empty when Pixazo would accept it."""
    rules = MODELS[model_id]
    if not isinstance(body, dict):
        return {"_body": "Request body must be a JSON object"}
    problems: dict[str, str] = {}
    for rule in rules.fields:
        if rule.name not in body:
            if rule.required:
                problems[rule.name] = "Missing data for required field."
            continue
        problem = _value_problem(rule, body[rule.name])
        if problem is not None:
            problems[rule.name] = problem
    for name in body:
        if rules.field(name) is None:
            problems[str(name)] = "Unknown field."
    return problems


def problems_message(problems: Mapping[str, str]) -> str:
    """One line naming each bad field, in a stable order."""
    return "; ".join(
        text if name == "_body" else f"{name}: {text}" for name, text in sorted(problems.items())
    )


def with_defaults(model_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request as Pixazo runs it: absent fields with a documented default filled in."""
    filled = dict(body)
    for rule in MODELS[model_id].fields:
        if rule.has_default and rule.name not in filled:
            filled[rule.name] = rule.default
    return filled
