"""The request and response shapes of the client API; /openapi.json is generated from them."""

from __future__ import annotations

import json

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from orchestrator.core.clients import ALL_EVENT_TYPES
from orchestrator.core.error_codes import ErrorCode
from orchestrator.jobs.state import PUBLIC_STATUSES

MAX_METADATA_BYTES = 8 * 1024
MAX_METADATA_KEYS = 50
MAX_IDEMPOTENCY_KEY = 255


class JobCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    model = fields.String(required=True, metadata={"description": "A model id from /v1/models"})
    input = fields.Dict(required=True, metadata={"description": "The model's parameters"})
    callback_url = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "https URL that receives this job's events"},
    )
    metadata = fields.Dict(load_default=dict, metadata={"description": "Your own key/values"})

    @validates("metadata")
    def _metadata(self, value: dict, **_: object) -> None:
        if len(value) > MAX_METADATA_KEYS:
            raise ValidationError(f"at most {MAX_METADATA_KEYS} keys")
        try:
            encoded = json.dumps(value, allow_nan=False)
        except ValueError:  # NaN/Infinity parse in Python but are not JSON to our consumers
            raise ValidationError("must be plain JSON (no NaN or Infinity)") from None
        if len(encoded) > MAX_METADATA_BYTES:
            raise ValidationError(f"at most {MAX_METADATA_BYTES} bytes of JSON")


class GatewayGenerationSchema(Schema):
    """Documentation only: the flat body the gateways use (aigateway.sh, EmpirioLabs, ...);
    its other keys are the model's parameters. See orchestrator.intake.dialects.videos."""

    model = fields.String(
        required=True,
        metadata={
            "description": "Model id or alias (pixverse/v5.6, pixverse-v5-6, pixverse-v6...)"
        },
    )
    prompt = fields.String(required=True)
    mode = fields.String(
        validate=validate.OneOf(("t2v", "i2v")),
        metadata={
            "description": "t2v or i2v (i2v needs image); default: i2v when an image is given"
        },
    )
    image = fields.String(metadata={"description": "Image URL: selects image-to-video"})
    image_url = fields.String(metadata={"description": "Same as image (give one of them)"})
    image_end = fields.String(
        allow_none=True, metadata={"description": "End frame: Pixazo has none, so only null"}
    )
    duration = fields.Raw(metadata={"description": 'Seconds: 5, "5" or "5s"'})
    aspect_ratio = fields.String(metadata={"description": "Also spelled resolution_ratio"})
    resolution = fields.String()
    audio = fields.Boolean(
        metadata={"description": "Also generate_audio / generate_audio_switch; not on v5.6"}
    )
    thinking = fields.String(
        metadata={"description": "Also thinking_type; on v5.6 only auto (not sent)"}
    )
    style = fields.String(metadata={"description": "A style preset, or none"})
    negative_prompt = fields.String()
    seed = fields.Integer()
    callback_url = fields.String(allow_none=True)
    metadata = fields.Dict()


class OutputSchema(Schema):
    media_url = fields.List(fields.String())
    media_type = fields.String()


class JobErrorSchema(Schema):
    code = fields.String(metadata={"enum": [code.value for code in ErrorCode]})
    message = fields.String()


class ResultSchema(Schema):
    """The gateways' summary of a completed job (aigateway.sh's ``result``)."""

    url = fields.String()
    duration = fields.Integer(allow_none=True, metadata={"description": "Seconds asked for"})
    resolution = fields.String(
        allow_none=True, metadata={"description": "Nominal frame (1920x1080) or tier (720p)"}
    )


class WarningSchema(Schema):
    field = fields.String(metadata={"description": "The parameter concerned"})
    message = fields.String()


class JobSchema(Schema):
    id = fields.String()
    job_id = fields.String(metadata={"description": "Same as id (EmpirioLabs' name)"})
    status = fields.String(validate=validate.OneOf(PUBLIC_STATUSES))
    model = fields.String()
    input = fields.Dict()
    metadata = fields.Dict()
    callback_url = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    upstream_status = fields.String(allow_none=True)
    output = fields.Nested(OutputSchema, allow_none=True)
    result = fields.Nested(
        ResultSchema,
        allow_none=True,
        metadata={"description": "Once completed: {url, duration, resolution}; else null"},
    )
    error = fields.Nested(JobErrorSchema, allow_none=True)
    warnings = fields.List(
        fields.Nested(WarningSchema),
        metadata={"description": "What was asked (or a gateway default) that Pixazo cannot honour"},
    )
    estimated_cost_usd = fields.Float(allow_none=True)
    attempts = fields.Integer()
    created = fields.Integer(allow_none=True, metadata={"description": "created_at, Unix seconds"})
    created_at = fields.String()
    updated_at = fields.String()
    completed_at = fields.String(allow_none=True)


class JobListSchema(Schema):
    data = fields.List(fields.Nested(JobSchema))
    next_cursor = fields.String(allow_none=True)


class JobListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(PUBLIC_STATUSES))
    model = fields.String()
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String()


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


class ParameterSchema(Schema):
    name = fields.String()
    type = fields.String()
    required = fields.Boolean()
    default = fields.Raw(allow_none=True)
    allowed = fields.List(fields.Raw(), allow_none=True)
    minimum = fields.Raw(allow_none=True)
    maximum = fields.Raw(allow_none=True)
    description = fields.String(allow_none=True)


class ModelSchema(Schema):
    id = fields.String()
    title = fields.String()
    kind = fields.String()
    submit_path = fields.String()
    parameters = fields.List(fields.Nested(ParameterSchema))
    pricing = fields.Dict(allow_none=True)


class DialectAliasSchema(Schema):
    alias = fields.String()
    text_to_video = fields.String()
    image_to_video = fields.String()


class DialectSchema(Schema):
    name = fields.String()
    route = fields.String()
    aliases = fields.List(fields.Nested(DialectAliasSchema))


class ModelListSchema(Schema):
    data = fields.List(fields.Nested(ModelSchema))
    dialects = fields.List(fields.Nested(DialectSchema))


class BudgetSchema(Schema):
    """The client's monthly budget and what it has committed this month (UTC)."""

    monthly_budget_usd = fields.Float(allow_none=True, metadata={"description": "null: none"})
    committed_usd = fields.Float()
    period = fields.String(metadata={"description": "the calendar month, YYYY-MM (UTC)"})
    period_start = fields.String()
    period_end = fields.String()
    unpriced = fields.String(
        validate=validate.OneOf(["allow", "refuse"]),
        metadata={"description": "jobs of a model with no published price"},
    )


class ClientSchema(Schema):
    id = fields.String()
    name = fields.String()
    callback_url = fields.String(allow_none=True)
    event_types = fields.List(fields.String())
    endpoint_disabled = fields.Boolean()
    created_at = fields.String()
    budget = fields.Nested(BudgetSchema)


class ClientUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    callback_url = fields.String(allow_none=True)
    event_types = fields.List(fields.String(validate=validate.OneOf(ALL_EVENT_TYPES)))
