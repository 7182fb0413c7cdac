"""The six Pixazo PixVerse models as the provider documents them, irregularities included.

Every submit is a charged generation, so input is validated here, strictly, before it ever
reaches Pixazo: a request Pixazo would reject (or silently coerce) is cheaper to refuse at intake.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import marshmallow
from marshmallow import fields, validate

TEXT_TO_VIDEO = "text-to-video"
IMAGE_TO_VIDEO = "image-to-video"

MIN_DURATION_SECONDS = 1
MAX_DURATION_SECONDS = 15
PRICE_DECIMALS = 4

ASPECT_RATIOS_V6 = ("16:9", "4:3", "1:1", "3:4", "9:16", "2:3", "3:2", "21:9")
ASPECT_RATIOS_V56 = ("16:9", "9:16", "1:1", "4:3", "3:4")
RESOLUTIONS_V6_T2V = ("360p", "540p", "720p", "1080p")
RESOLUTIONS_V6_I2V = ("360p", "480p", "720p", "1080p")  # 480p here, 540p everywhere else
RESOLUTIONS_C1 = ("360p", "540p", "720p", "1080p")
RESOLUTIONS_V56_T2V = ("720p", "1080p", "2160p")
RESOLUTIONS_V56_I2V = ("720p", "1080p")
DURATIONS_V56_T2V = (3, 5, 7, 10)
DURATIONS_V56_I2V = ("5", "10")  # strings: the only model that takes duration as a string
STYLES = ("anime", "3d_animation", "clay", "comic", "cyberpunk")
THINKING_TYPES = ("enabled", "disabled", "auto")
URL_SCHEMES = frozenset({"http", "https"})


# --- strict fields -------------------------------------------------------------------------------


class StrictString(fields.String):
    """A JSON string and nothing else (marshmallow's String also takes bytes)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """A JSON integer: "5", 5.0 and true are refused, since Pixazo's typing is not documented
    to coerce them and a silently coerced value would still be a charged generation."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """JSON true/false only; marshmallow's Boolean would also take "yes", 1 and "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _not_blank(value: str) -> None:
    if not value.strip():
        raise marshmallow.ValidationError("Must be a non-empty string.")


class StrictUrl(fields.Url):
    """An absolute http(s) URL given as a JSON string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(schemes=set(URL_SCHEMES), require_tld=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


# --- parameters ----------------------------------------------------------------------------------

_NO_DEFAULT: Any = marshmallow.missing


@dataclass(frozen=True)
class Param:
    """One documented body field; both the schema and ``describe_catalog`` are built from it."""

    name: str
    type: str  # "string" | "integer" | "boolean"
    description: str
    required: bool = False
    default: Any = _NO_DEFAULT
    allowed: tuple[Any, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    url: bool = False
    non_blank: bool = False

    def field(self) -> fields.Field:
        validators: list[Callable[[Any], object]] = []
        if self.allowed is not None:
            validators.append(validate.OneOf(self.allowed))
        if self.minimum is not None or self.maximum is not None:
            validators.append(validate.Range(min=self.minimum, max=self.maximum))
        if self.non_blank:
            validators.append(_not_blank)
        kwargs: dict[str, Any] = {"required": self.required, "validate": validators}
        if self.default is not _NO_DEFAULT:
            kwargs["load_default"] = self.default
        if self.url:
            return StrictUrl(**kwargs)
        field_class = {"string": StrictString, "integer": StrictInteger, "boolean": StrictBoolean}
        return field_class[self.type](**kwargs)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": None if self.default is _NO_DEFAULT else self.default,
            "allowed": None if self.allowed is None else list(self.allowed),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.description,
        }

    def json_schema(self) -> dict[str, Any]:
        """The same rules as :meth:`field`, as the JSON Schema /openapi.json publishes."""
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.url:
            schema["format"] = "uri"
        if self.non_blank:
            schema["minLength"] = 1
            schema["pattern"] = r"\S"
        if self.allowed is not None:
            schema["enum"] = list(self.allowed)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.default is not _NO_DEFAULT:
            schema["default"] = self.default
        return schema


def _prompt() -> Param:
    return Param(
        "prompt", "string", "What the video shows; detail helps.", required=True, non_blank=True
    )


def _image_url(formats: str) -> Param:
    return Param(
        "image_url",
        "string",
        f"Public http(s) URL of the source image ({formats}).",
        required=True,
        url=True,
    )


def _negative_prompt(default: Any = _NO_DEFAULT) -> Param:
    return Param("negative_prompt", "string", "What to keep out of the video.", default=default)


def _aspect_ratio(allowed: tuple[str, ...], *, required: bool = False) -> Param:
    default = _NO_DEFAULT if required else "16:9"
    return Param(
        "aspect_ratio", "string", "Video aspect ratio.", required, default, allowed=allowed
    )


def _resolution(allowed: tuple[str, ...], *, required: bool = False) -> Param:
    default = _NO_DEFAULT if required else "720p"
    return Param("resolution", "string", "Output resolution.", required, default, allowed=allowed)


def _duration_range() -> Param:
    return Param(
        "duration",
        "integer",
        "Length in seconds (a JSON integer).",
        default=5,
        minimum=MIN_DURATION_SECONDS,
        maximum=MAX_DURATION_SECONDS,
    )


def _style() -> Param:
    return Param("style", "string", "Visual style preset.", allowed=STYLES)


def _seed() -> Param:
    return Param("seed", "integer", "Random seed; the same seed reproduces the same output.")


def _audio() -> Param:
    return Param(
        "generate_audio_switch",
        "boolean",
        "Generate music, sound effects and dialogue with the video (costs more).",
        default=False,
    )


def _multi_clip() -> Param:
    return Param(
        "generate_multi_clip_switch",
        "boolean",
        "Multi-clip output with dynamic camera changes.",
        default=False,
    )


def _thinking(default: Any = _NO_DEFAULT) -> Param:
    return Param(
        "thinking_type",
        "string",
        "Prompt optimization mode.",
        default=default,
        allowed=THINKING_TYPES,
    )


def _v6_t2v_params() -> tuple[Param, ...]:
    return (
        _prompt(),
        _negative_prompt(default=""),
        _aspect_ratio(ASPECT_RATIOS_V6),
        _resolution(RESOLUTIONS_V6_T2V),
        _duration_range(),
        _style(),
        _seed(),
        _audio(),
        _multi_clip(),
        _thinking(),
    )


V6_T2V_PARAMS = _v6_t2v_params()
C1_T2V_PARAMS = _v6_t2v_params()  # documented identically to v6 text-to-video
V6_I2V_PARAMS = (
    _prompt(),
    _image_url("JPEG, PNG or WebP"),
    _resolution(RESOLUTIONS_V6_I2V),
    _duration_range(),
    _negative_prompt(),
    _style(),
    _seed(),
    _audio(),
    _multi_clip(),
    _thinking(default="auto"),
)
C1_I2V_PARAMS = (
    _prompt(),
    _image_url("jpg, jpeg, png, webp, gif or avif"),
    _resolution(RESOLUTIONS_C1),
    _duration_range(),
    _seed(),
    _audio(),
)
V56_T2V_PARAMS = (
    _prompt(),
    _aspect_ratio(ASPECT_RATIOS_V56, required=True),
    _resolution(RESOLUTIONS_V56_T2V, required=True),
    Param(
        "duration",
        "integer",
        "Length in seconds (a JSON integer).",
        required=True,
        allowed=DURATIONS_V56_T2V,
    ),
    _negative_prompt(),
)
V56_I2V_PARAMS = (
    _prompt(),
    _resolution(RESOLUTIONS_V56_I2V, required=True),
    Param(
        "duration",
        "string",
        'Length in seconds as a JSON string: "5" or "10".',
        required=True,
        allowed=DURATIONS_V56_I2V,
    ),
    _negative_prompt(),
    _image_url("any image format; must be publicly reachable"),
)


class _ModelInputSchema(marshmallow.Schema):
    class Meta:
        unknown = marshmallow.RAISE


def _schema_for(model_id: str, params: Iterable[Param]) -> type[marshmallow.Schema]:
    class_name = "".join(part.capitalize() for part in model_id.replace(".", "-").split("-"))
    return _ModelInputSchema.from_dict(
        {param.name: param.field() for param in params}, name=f"{class_name}InputSchema"
    )


# --- models --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    id: str  # also the request_id prefix
    title: str
    kind: str  # TEXT_TO_VIDEO | IMAGE_TO_VIDEO
    submit_path: str
    schema: type[marshmallow.Schema]
    parameters: tuple[Param, ...] = ()


def _spec(model_id: str, title: str, kind: str, path: str, params: tuple[Param, ...]) -> ModelSpec:
    schema = _schema_for(model_id, params)
    return ModelSpec(model_id, title, kind, path, schema, params)


V6_T2V = "pixverse-v6-text-to-video"
V6_I2V = "pixverse-v6-image-to-video"
C1_T2V = "pixverse-c1-text-to-video"
C1_I2V = "pixverse-c1-image-to-video"
V56_T2V = "pixverse"
V56_I2V = "pixverse-i2v"

MODELS: dict[str, ModelSpec] = {
    spec.id: spec
    for spec in (
        _spec(
            V6_T2V,
            "PixVerse V6 text-to-video",
            TEXT_TO_VIDEO,
            f"/{V6_T2V}/v1/{V6_T2V}-request",
            V6_T2V_PARAMS,
        ),
        _spec(
            V6_I2V,
            "PixVerse V6 image-to-video",
            IMAGE_TO_VIDEO,
            f"/{V6_I2V}/v1/{V6_I2V}-request",
            V6_I2V_PARAMS,
        ),
        _spec(
            C1_T2V,
            "PixVerse C1 text-to-video",
            TEXT_TO_VIDEO,
            f"/{C1_T2V}/v1/{C1_T2V}-request",
            C1_T2V_PARAMS,
        ),
        _spec(
            C1_I2V,
            "PixVerse C1 image-to-video",
            IMAGE_TO_VIDEO,
            f"/{C1_I2V}/v1/{C1_I2V}-request",
            C1_I2V_PARAMS,
        ),
        _spec(
            V56_T2V,
            "PixVerse v5.6 text-to-video",
            TEXT_TO_VIDEO,
            "/pixverse/v1/pixverse-request",
            V56_T2V_PARAMS,
        ),
        _spec(
            V56_I2V,
            "PixVerse v5.6 image-to-video",
            IMAGE_TO_VIDEO,
            "/pixverse-i2v/v1/pixverse-i2v-request",
            V56_I2V_PARAMS,
        ),
    )
}
# One loader per model, made once: a marshmallow Schema instance copies every field on
# construction, which was a tenth of an intake request's CPU when made per request. Loading
# keeps no state on the instance (as intake's shared JobCreateSchema), so threads share them.
_INPUT_LOADERS: dict[str, marshmallow.Schema] = {
    model_id: spec.schema() for model_id, spec in MODELS.items()
}


# One valid input per model: the API documentation's examples (a test posts each one).
EXAMPLE_INPUTS: dict[str, dict[str, Any]] = {
    V6_T2V: {
        "prompt": "A red fox trots through fresh snow at dawn, cinematic",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    },
    V6_I2V: {
        "prompt": "The cat turns its head and blinks",
        "image_url": "https://images.example.com/cat.png",
        "resolution": "720p",
        "duration": 5,
    },
    C1_T2V: {"prompt": "A paper boat drifts down a rainy street", "style": "anime"},
    C1_I2V: {
        "prompt": "The lighthouse beam sweeps across the waves",
        "image_url": "https://images.example.com/lighthouse.jpg",
        "duration": 5,
    },
    V56_T2V: {
        "prompt": "A hot-air balloon rises over a canyon",
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "duration": 5,
    },
    V56_I2V: {
        "prompt": "The dog shakes off the water",
        "image_url": "https://images.example.com/dog.webp",
        "resolution": "720p",
        "duration": "5",
    },
}


def get_model(model_id: str) -> ModelSpec | None:
    return MODELS.get(model_id)


def validate_input(model_id: str, data: object) -> dict:
    """Normalize one model's input: defaults filled in so the stored input says what was asked."""
    loader = _INPUT_LOADERS.get(model_id)
    if loader is None:
        raise marshmallow.ValidationError({"model": [f"Unknown model '{model_id}'."]})
    if not isinstance(data, dict):
        raise marshmallow.ValidationError({"_schema": ["Input must be a JSON object."]})
    return loader.load(data)


# --- gateway aliases -----------------------------------------------------------------------------

# alias -> (text-to-video id, image-to-video id)
_ALIAS_FAMILIES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("pixverse-v6", "pixverse/v6"), (V6_T2V, V6_I2V)),
    **dict.fromkeys(("pixverse-c1", "pixverse/c1"), (C1_T2V, C1_I2V)),
    **dict.fromkeys(
        ("pixverse-5-6", "pixverse/v5.6", "pixverse-v5-6", "pixverse-v5.6", "pixverse-5.6"),
        (V56_T2V, V56_I2V),
    ),
}


def alias_names() -> tuple[str, ...]:
    """Every gateway model name that ``resolve_alias`` knows (model ids aside)."""
    return tuple(_ALIAS_FAMILIES)


def resolve_alias(name: object, has_image: bool) -> str | None:
    """Gateway model names name a family; the presence of an image picks the member."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    if key in MODELS:
        return key
    family = _ALIAS_FAMILIES.get(key)
    if family is None:
        return None
    return family[1] if has_image else family[0]


# --- pricing -------------------------------------------------------------------------------------

# Pixazo's own page, USD per second of video; the two tiers are unlabeled there and taken to be
# (without audio, with audio). 480p, the resolution this model actually offers, is not priced.
V6_I2V_PRICE_PER_SECOND: dict[str, tuple[float, float]] = {
    "360p": (0.025, 0.035),
    "540p": (0.035, 0.045),
    "720p": (0.045, 0.06),
    "1080p": (0.09, 0.115),
}
# A reseller's (EmpirioLabs) v5.6 card, USD per video without audio; Pixazo publishes none.
V56_PRICE_PER_VIDEO: dict[tuple[str, int], float] = {
    ("720p", 5): 0.65,
    ("720p", 10): 1.43,
    ("1080p", 5): 0.75,
}
V56_PRICE_SOURCE = "reseller card (EmpirioLabs pixverse-v5-6), no audio; Pixazo publishes none"


def estimate_cost_usd(model_id: str, normalized_input: dict) -> float | None:
    """A published figure or None: a guess presented as a price would mislead more than a gap."""
    if model_id == V6_I2V:
        price = _v6_i2v_price(normalized_input)
    elif model_id in (V56_T2V, V56_I2V):
        price = _v56_price(normalized_input)
    else:
        price = None
    return None if price is None else round(price, PRICE_DECIMALS)


def _v6_i2v_price(normalized_input: dict) -> float | None:
    resolution = normalized_input.get("resolution")
    tiers = V6_I2V_PRICE_PER_SECOND.get(resolution) if isinstance(resolution, str) else None
    duration = normalized_input.get("duration")
    if tiers is None or not isinstance(duration, int) or isinstance(duration, bool):
        return None
    with_audio = normalized_input.get("generate_audio_switch") is True
    return tiers[1 if with_audio else 0] * duration


def _v56_price(normalized_input: dict) -> float | None:
    duration = normalized_input.get("duration")
    if isinstance(duration, str) and duration.isdigit():
        duration = int(duration)
    resolution = normalized_input.get("resolution")
    if not isinstance(resolution, str):
        return None
    if not isinstance(duration, int) or isinstance(duration, bool):
        return None
    return V56_PRICE_PER_VIDEO.get((resolution, duration))


def _describe_pricing(model_id: str) -> dict[str, Any] | None:
    if model_id == V6_I2V:
        return {
            "currency": "USD",
            "unit": "per_second",
            "source": "Pixazo pricing table (tiers unlabeled; second tier taken as with audio)",
            "rates": [
                {"resolution": res, "generate_audio_switch": audio, "price": tiers[int(audio)]}
                for res, tiers in V6_I2V_PRICE_PER_SECOND.items()
                for audio in (False, True)
            ],
        }
    if model_id in (V56_T2V, V56_I2V):
        return {
            "currency": "USD",
            "unit": "per_video",
            "source": V56_PRICE_SOURCE,
            "rates": [
                {"resolution": res, "duration": duration, "price": price}
                for (res, duration), price in V56_PRICE_PER_VIDEO.items()
            ],
        }
    return None


def describe_catalog() -> list[dict]:
    """The catalog as GET /v1/models shows it; built from the same Params the schemas use."""
    return [
        {
            "id": spec.id,
            "title": spec.title,
            "kind": spec.kind,
            "submit_path": spec.submit_path,
            "parameters": [param.describe() for param in spec.parameters],
            "pricing": _describe_pricing(spec.id),
        }
        for spec in MODELS.values()
    ]
