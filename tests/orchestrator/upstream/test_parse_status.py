"""``parse_status``'s plain-shape path gives what the marshmallow schema gives, for any body.

The receiver answers 400 with the schema's own messages for a bad body, so the plain path may
only ever take bodies the schema takes, and must return the same data (same keys, same order).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from orchestrator.upstream import pixazo

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_REQUEST_IDS = st.text(max_size=3) | st.text(min_size=255, max_size=258) | _JSON
_STATUSES = st.sampled_from([*pixazo.UPSTREAM_STATUSES, "queued", "DONE", ""]) | _JSON
_OUTPUTS = (
    st.none()
    | _JSON
    | st.fixed_dictionaries(
        {"media_url": st.lists(st.text(), max_size=2) | _JSON},
        optional={"media_type": st.none() | st.text() | _JSON, "extra": _JSON},
    )
)
_FIELDS = {
    "request_id": _REQUEST_IDS,
    "status": _STATUSES,
    "model_id": st.none() | st.text() | _JSON,
    "error": _JSON,
    "output": _OUTPUTS,
    "created_at": _JSON,
    "updated_at": _JSON,
    "completed_at": _JSON,
    "unknown": _JSON,
}
# Near-valid bodies (each field present or not, each drawn from good and bad values) and
# arbitrary JSON, so that both the plain path and the schema's errors are exercised.
_BODIES = st.fixed_dictionaries({}, optional=_FIELDS) | _JSON
# Bodies with a usable request id (or one at the length bounds) and status, so that the rest
# (model_id, output, media types) is tested on bodies the plain path gets as far as.
_MOSTLY_VALID = st.fixed_dictionaries(
    {
        "request_id": st.text(min_size=1, max_size=3) | st.text(min_size=255, max_size=257),
        "status": st.sampled_from(pixazo.UPSTREAM_STATUSES),
    },
    optional={k: v for k, v in _FIELDS.items() if k not in ("request_id", "status")},
)


def _outcome(parse: Any, body: Any) -> tuple[str, Any]:
    try:
        return "ok", list(parse(body).items())
    except ValidationError as exc:
        return "error", exc.messages


def _schema_only(body: Any) -> dict[str, Any]:
    """parse_status as it was: the schema for every body."""
    if not isinstance(body, dict):
        raise ValidationError({"_schema": ["must be a JSON object"]})
    data = pixazo.UpstreamStatusSchema().load(body)
    if data["error"] is not None and not isinstance(data["error"], str):
        data["error"] = pixazo.json.dumps(data["error"])[:500]
    return data


@settings(max_examples=1500, deadline=None)
@given(_BODIES | _MOSTLY_VALID)
def test_the_plain_path_and_the_schema_agree(body):
    assert _outcome(pixazo.parse_status, body) == _outcome(_schema_only, body)


def test_a_documented_callback_takes_the_plain_path():
    body = {
        "request_id": "req_1",
        "status": "COMPLETED",
        "output": {"media_url": ["https://cdn.example/v.mp4"]},
        "error": None,
        "completed_at": "2026-01-01T00:00:00Z",
    }
    plain = pixazo._plain_status(body)
    assert plain is not None and plain["output"]["media_type"] == "video/mp4"
    assert list(plain.items()) == list(pixazo.UpstreamStatusSchema().load(body).items())


def test_a_bad_body_keeps_the_schemas_words():
    assert pixazo._plain_status({"request_id": "", "status": "COMPLETED"}) is None
    assert _outcome(pixazo.parse_status, {"status": "NOPE"})[0] == "error"
