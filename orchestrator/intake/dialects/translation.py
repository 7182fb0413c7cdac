"""What the apiin.one and skills.video dialects share: a translated request, and validation
through the catalog with refusals named in the dialect's own field names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow

from orchestrator.core import catalog
from orchestrator.core.errors import ApiError, validation_error

ENVELOPE_FIELDS = ("callback_url", "metadata")  # ours, accepted next to any dialect's fields
NOT_HONOURED = "cannot be honoured through Pixazo: {reason}"


@dataclass(frozen=True)
class Translation:
    """A dialect body as an ordinary ``POST /v1/jobs`` body, plus what could not be applied."""

    model: str
    input: dict[str, Any]
    envelope: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[dict[str, str], ...] = ()  # [{"field", "message"}], stored with the job

    def job_request(self) -> dict[str, Any]:
        return {"model": self.model, "input": self.input, **self.envelope}


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    return dict(body)


def split_envelope(body: dict[str, Any]) -> dict[str, Any]:
    """Removes (and returns) our own envelope fields from a flat dialect body."""
    return {name: body.pop(name) for name in ENVELOPE_FIELDS if name in body}


def refuse(field_name: str, message: str) -> ApiError:
    return validation_error({field_name: [message]})


def unknown_fields(body: Mapping[str, Any], known: frozenset[str], model: str) -> dict[str, Any]:
    return {
        name: [f"not a parameter {model} takes through Pixazo"]
        for name in sorted(set(body) - known)
    }


def whole_number(value: Any) -> Any:
    """JSON "number" fields that Pixazo takes as integers: 5.0 is 5; anything else unchanged so
    that validation names it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def validated(model_id: str, model_input: dict[str, Any], names: Mapping[str, str]) -> dict:
    """The catalog's validation of one model's input; a refusal is a 422 whose details name the
    fields as the dialect spells them (``names`` maps Pixazo's spelling to the dialect's)."""
    try:
        return catalog.validate_input(model_id, model_input)
    except marshmallow.ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise validation_error({names.get(k, k): v for k, v in messages.items()}) from None
