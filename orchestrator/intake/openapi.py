"""``/openapi.json`` (OpenAPI 3.1) and ``/docs``, which renders it with Swagger UI.

The spec is generated, never hand-kept beside the code: the response shapes come from the
marshmallow schemas (``schemas.py``), and the request body of ``POST /v1/jobs`` from the model
catalog (``core/catalog.py``): one ``oneOf`` branch per model, keyed by ``model``, whose ``input``
has the catalog's parameters, types, allowed values, defaults and required fields, with the
catalog's example. The downstream events are OpenAPI 3.1 ``webhooks``.

Swagger UI's files come from the ``flask-swagger-ui`` package and are served by this blueprint,
so ``/docs`` loads nothing from any other host (no CDN).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, abort, jsonify, send_from_directory

from orchestrator.core import catalog
from orchestrator.core.clients import ALL_EVENT_TYPES, DEFAULT_EVENT_TYPES
from orchestrator.core.errors import STORE_RETRY_AFTER_SECONDS
from orchestrator.intake import dialect_routes, schemas
from orchestrator.jobs.state import PUBLIC_STATUSES

bp = Blueprint("docs", __name__)
API_TITLE = "Pixazo video job orchestrator"
API_VERSION = "1.0.0"
OPENAPI_VERSION = "3.1.0"
ASSET_MAX_AGE_SECONDS = 3600
# The Swagger UI build that flask-swagger-ui ships (its version is the Swagger UI version),
# and our page and its start-up script beside this module.
SWAGGER_UI_DIST = str(resources.files("flask_swagger_ui") / "dist")
SWAGGER_UI_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
DOCS_UI = str(resources.files("orchestrator.intake") / "docs_ui")
DOCS_UI_ASSETS = frozenset({"docs.js", "docs.css"})

TAG_JOBS, TAG_MODELS, TAG_CLIENT, TAG_EVENTS = ("jobs", "models", "client", "events")
TAG_DIALECTS = dialect_routes.OPENAPI_TAG
_TAGS = (
    (TAG_JOBS, "Create, read, list and cancel video jobs."),
    (TAG_MODELS, "The model catalog: each model's parameters, allowed values and defaults."),
    (TAG_CLIENT, "Your client: where events go and which ones."),
    (
        TAG_DIALECTS,
        "The routes of the gateways (aigateway.sh, EmpirioLabs, apiin.one, skills.video), "
        "on top of the same jobs.",
    ),
    (
        TAG_EVENTS,
        "Signed events (Standard Webhooks) we POST to your callback URL; see `webhooks`.",
    ),
)

# --- shared parameters, headers and responses -----------------------------------------------------


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


_ERROR_REF = _ref("schemas", "Error")
_JOB_REF = _ref("schemas", "Job")
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^job_"},
    "example": "job_01m80kgy43ztb6vqsxbz90tz13",
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": schemas.MAX_IDEMPOTENCY_KEY},
    "description": "Same key + same body returns the same job (200); the same key with another "
    "body is 409 idempotency_conflict. Keys are per client, kept 24 h. Safe to retry with.",
    "example": "order-42",
}

_HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    },
    "Location": {
        "description": "The job's URL: `/v1/jobs/{job_id}`.",
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}},
    "Request-Id": {
        "description": "This request's id (yours from `X-Request-Id` / `Request-Id` when it is at "
        "most 64 characters of `[A-Za-z0-9._:-]`, else a new `req_` id); our logs name it.",
        "schema": {"type": "string"},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed per window for this client (IETF RateLimit fields).",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window resets.",
        "schema": {"type": "integer", "minimum": 0},
    },
}


def _error_example(code: str, message: str, details: dict[str, Any] | None = None) -> Any:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _error_response(description: str, example: dict[str, Any], *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": f"{description} (the error shape: `error.code`, `error.message`, "
        "`error.details`)",
        "content": {"application/json": {"schema": _ERROR_REF, "example": example}},
        "headers": {name: _ref("headers", name) for name in ("Request-Id", *headers)},
    }
    return response


_RESPONSES: dict[str, dict[str, Any]] = {
    "BadRequest": _error_response(
        "The body is not JSON", _error_example("bad_request", "The body must be JSON.")
    ),
    "Unauthorized": _error_response(
        "Missing or wrong API key",
        _error_example("unauthorized", "A valid API key is required (Authorization: Bearer ...)."),
        "WWW-Authenticate",
    ),
    "NotFound": _error_response(
        "No such job (another client's job is the same 404)",
        _error_example("not_found", "No such job."),
    ),
    "Conflict": _error_response(
        "Conflict: `idempotency_conflict` (the key was used with another body) or "
        "`not_cancelable` (the job is already terminal)",
        _error_example("not_cancelable", "The job is already completed.", {"status": "completed"}),
    ),
    "PayloadTooLarge": _error_response(
        "The body is larger than the limit",
        _error_example("payload_too_large", "The request body is too large."),
    ),
    "ValidationError": _error_response(
        "Invalid fields: `details` maps field paths such as `input.duration` to messages",
        _error_example(
            "validation_error",
            "The request has invalid fields.",
            {"input.duration": "Must be greater than or equal to 1 and less than or equal to 15."},
        ),
    ),
    "BudgetExceeded": _error_response(
        "`budget_exceeded`: the job's estimated cost would take this client's committed spend for "
        "the calendar month (UTC) over its budget, or the model has no published price and the "
        "client refuses unpriced jobs; nothing was stored",
        _error_example(
            "budget_exceeded",
            "This job would exceed the client's monthly budget.",
            {"budget_usd": 6.5, "committed_usd": 6.5, "job_usd": 0.65},
        ),
    ),
    "RateLimited": _error_response(
        "Too many requests for this client; wait `Retry-After` seconds",
        _error_example("rate_limited", "Too many requests; slow down.", {"retry_after": 12}),
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ),
    "Unavailable": _error_response(
        "The job store is unavailable (nothing was written): retry after `Retry-After` "
        f"seconds ({STORE_RETRY_AFTER_SECONDS}), with the same Idempotency-Key when creating",
        _error_example("unavailable", "The job store is unavailable; retry."),
        "Retry-After",
    ),
}
# Every operation is authenticated, rate limited per client and needs the job store.
_EVERY_OPERATION = {"401": "Unauthorized", "429": "RateLimited", "503": "Unavailable"}


def _answers(ok: dict[str, Any], *errors: tuple[str, str]) -> dict[str, Any]:
    """``ok`` (status -> response) plus error responses by reference (status, component)."""
    return {**ok, **{status: _ref("responses", name) for status, name in errors}}


def _ok(schema: dict[str, Any], description: str = "OK", *headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = {name: _ref("headers", name) for name in headers}
    return response


def _with_request_id(responses: dict[str, Any]) -> None:
    """Every answer of ours carries a ``Request-Id``; referenced answers get it in components."""
    for response in responses.values():
        if "$ref" not in response:
            response.setdefault("headers", {})["Request-Id"] = _ref("headers", "Request-Id")


def _body(schema: dict[str, Any], examples: dict[str, Any] | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = examples
    return {"required": True, "content": {"application/json": media}}


# --- POST /v1/jobs: one branch per model ------------------------------------------------------


def _schema_name(spec: catalog.ModelSpec, suffix: str) -> str:
    """``PixverseV6TextToVideo`` + suffix, from the catalog's own schema class name."""
    return spec.schema.__name__.removesuffix("InputSchema") + suffix


def input_schema(spec: catalog.ModelSpec) -> dict[str, Any]:
    """A model's ``input`` as JSON Schema, from the same ``Param``s intake validates with."""
    schema: dict[str, Any] = {
        "type": "object",
        "title": f"{spec.title} input",
        "properties": {param.name: param.json_schema() for param in spec.parameters},
        "additionalProperties": False,
        "examples": [catalog.EXAMPLE_INPUTS[spec.id]],
    }
    required = [param.name for param in spec.parameters if param.required]
    if required:
        schema["required"] = required
    return schema


def example_body(model_id: str) -> dict[str, Any]:
    """The documented ``POST /v1/jobs`` example of a model."""
    return {"model": model_id, "input": catalog.EXAMPLE_INPUTS[model_id]}


def _job_create_branch(spec: catalog.ModelSpec, common: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": spec.title,
        "description": f"`{spec.id}`: {spec.title} ({spec.kind}).",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "const": spec.id},
            "input": _ref("schemas", _schema_name(spec, "Input")),
            **common,
        },
        "additionalProperties": False,
        "examples": [example_body(spec.id)],
    }


def _job_create_schemas(plugin: MarshmallowPlugin) -> dict[str, dict[str, Any]]:
    """``JobCreate`` (the oneOf) and its branches; ``callback_url`` and ``metadata`` are taken
    from ``JobCreateSchema``, the schema intake loads the body with."""
    converted = plugin.converter.schema2jsonschema(schemas.JobCreateSchema)  # type: ignore[union-attr]
    common = {name: converted["properties"][name] for name in ("callback_url", "metadata")}
    common["callback_url"] = {**common["callback_url"], "format": "uri"}
    common["metadata"] = {**common["metadata"], "maxProperties": schemas.MAX_METADATA_KEYS}
    out: dict[str, dict[str, Any]] = {}
    mapping: dict[str, str] = {}
    for spec in catalog.MODELS.values():
        branch = _schema_name(spec, "JobCreate")
        out[_schema_name(spec, "Input")] = input_schema(spec)
        out[branch] = _job_create_branch(spec, common)
        mapping[spec.id] = f"#/components/schemas/{branch}"
    out["JobCreate"] = {
        "description": "A job: `model` picks the branch, `input` holds that model's parameters "
        "(see GET /v1/models for the same catalog).",
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "model", "mapping": mapping},
    }
    return out


def _job_create_examples() -> dict[str, Any]:
    return {
        spec.id: {"summary": spec.title, "value": example_body(spec.id)}
        for spec in catalog.MODELS.values()
    }


# --- operations ----------------------------------------------------------------------------------


def _create_answers() -> dict[str, Any]:
    return _answers(
        {
            "202": _ok(_JOB_REF, "Created and queued", "Location"),
            "200": _ok(_JOB_REF, "Replayed: the job this Idempotency-Key created", "Location"),
        },
        ("400", "BadRequest"),
        ("402", "BudgetExceeded"),
        ("409", "Conflict"),
        ("413", "PayloadTooLarge"),
        ("422", "ValidationError"),
    )


def _operations() -> dict[str, dict[str, Any]]:
    list_params = [
        {
            "name": "status",
            "in": "query",
            "schema": {"type": "string", "enum": list(PUBLIC_STATUSES)},
        },
        {
            "name": "model",
            "in": "query",
            "schema": {"type": "string", "enum": list(catalog.MODELS)},
        },
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {
            "name": "cursor",
            "in": "query",
            "schema": {"type": "string"},
            "description": "`next_cursor` of the previous page",
        },
    ]
    return {
        "/v1/jobs": {
            "post": {
                "operationId": "createJob",
                "tags": [TAG_JOBS],
                "summary": "Create a video job",
                "description": "Validated against the model's rules before anything is stored: "
                "a 422 names each bad field (`input.duration`). The result comes as a signed "
                "event to `callback_url` (or your client's endpoint), and by polling the job.",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body(_ref("schemas", "JobCreate"), _job_create_examples()),
                "responses": _create_answers(),
            },
            "get": {
                "operationId": "listJobs",
                "tags": [TAG_JOBS],
                "summary": "List your jobs, newest first",
                "parameters": list_params,
                "responses": _answers(
                    {"200": _ok(_ref("schemas", "JobList"))}, ("422", "ValidationError")
                ),
            },
        },
        "/v1/videos/generations": {
            "post": {
                "operationId": "createGeneration",
                "tags": [TAG_DIALECTS],
                "summary": "Create a job from a gateway-style flat body (model aliases)",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body(_ref("schemas", "GatewayGeneration")),
                "responses": _create_answers(),
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "tags": [TAG_JOBS],
                "summary": "Get a job",
                "parameters": [_JOB_ID],
                "responses": _answers({"200": _ok(_JOB_REF)}, ("404", "NotFound")),
            },
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "tags": [TAG_JOBS],
                "summary": "Cancel a job that is not terminal",
                "parameters": [_JOB_ID],
                "responses": _answers(
                    {"200": _ok(_JOB_REF, "The job, now canceled")},
                    ("404", "NotFound"),
                    ("409", "Conflict"),
                ),
            },
        },
        "/v1/models": {
            "get": {
                "operationId": "listModels",
                "tags": [TAG_MODELS],
                "summary": "The model catalog: parameters, allowed values, defaults",
                "responses": _answers({"200": _ok(_ref("schemas", "ModelList"))}),
            },
        },
        "/v1/client": {
            "get": {
                "operationId": "getClient",
                "tags": [TAG_CLIENT],
                "summary": "Your client settings",
                "responses": _answers({"200": _ok(_ref("schemas", "Client"))}),
            },
            "patch": {
                "operationId": "updateClient",
                "tags": [TAG_CLIENT],
                "summary": "Set your endpoint and event types",
                "requestBody": _body(_ref("schemas", "ClientUpdate")),
                "responses": _answers(
                    {"200": _ok(_ref("schemas", "Client"))},
                    ("400", "BadRequest"),
                    ("422", "ValidationError"),
                ),
            },
        },
    }


# --- webhooks: the events we send ----------------------------------------------------------------

_SIGNATURE_HEADERS = (
    ("webhook-id", "The event id (`evt_...`): the same on every attempt; dedupe on it."),
    ("webhook-timestamp", "Unix seconds of this attempt; refuse one far from your clock."),
    (
        "webhook-signature",
        "`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` under your "
        "`whsec_` secret; space-separated when two secrets sign (rotation). Verify with "
        "`standardwebhooks.Webhook(secret).verify(body, headers)`.",
    ),
)
_EVENT_ANSWERS = {
    "2XX": {"description": "Received: the delivery is done (redirects are not followed)."},
    "410": {"description": "Gone: your client's endpoint is disabled; nothing more is sent."},
    "default": {
        "description": "Anything else, or no answer in time: retried on the delivery schedule "
        "with jitter (a `Retry-After` on 429/503 is honoured), then dead-lettered."
    },
}


def _event_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "type", "created_at", "data"],
        "properties": {
            "id": {"type": "string", "pattern": "^evt_", "description": "Same as webhook-id"},
            "type": {"type": "string", "enum": list(ALL_EVENT_TYPES)},
            "created_at": {"type": "string", "format": "date-time"},
            "data": {**_JOB_REF, "description": "The job object at the time of the event"},
        },
    }


def _webhooks() -> dict[str, Any]:
    parameters = [
        {
            "name": name,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in _SIGNATURE_HEADERS
    ]
    out: dict[str, Any] = {}
    for event_type in ALL_EVENT_TYPES:
        opt_in = "" if event_type in DEFAULT_EVENT_TYPES else " Opt-in (PATCH /v1/client)."
        schema = {
            "allOf": [_ref("schemas", "Event"), {"properties": {"type": {"const": event_type}}}]
        }
        out[event_type] = {
            "post": {
                "operationId": "event" + event_type.title().replace(".", ""),
                "tags": [TAG_EVENTS],
                "summary": f"`{event_type}`: sent to the job's callback_url, else your endpoint",
                "description": "One event per job and type, with a stable `evt_` id; "
                "signed per the Standard Webhooks spec." + opt_in,
                "security": [],
                "parameters": parameters,
                "requestBody": _body(schema),
                "responses": _EVENT_ANSWERS,
            }
        }
    return out


# --- the document --------------------------------------------------------------------------------


def build_spec() -> dict[str, Any]:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": "Submit PixVerse video jobs; receive signed result webhooks. "
            "Authenticate with `Authorization: Bearer <api_key>`. Errors always have one shape: "
            '`{"error": {"code", "message", "details"}}`.'
        },
        webhooks=_webhooks(),
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, tag_text in _TAGS:
        spec.tag({"name": name, "description": tag_text})
    for name, header in _HEADERS.items():
        spec.components.header(name, header)
    for name, response in _RESPONSES.items():
        spec.components.response(name, response)
    for name, schema in (
        ("GatewayGeneration", schemas.GatewayGenerationSchema),
        ("Job", schemas.JobSchema),
        ("JobList", schemas.JobListSchema),
        ("Error", schemas.ErrorSchema),
        ("ModelList", schemas.ModelListSchema),
        ("Client", schemas.ClientSchema),
        ("ClientUpdate", schemas.ClientUpdateSchema),
    ):
        spec.components.schema(name, schema=schema)
    spec.components.schema("Event", _event_schema())
    for name, component in _job_create_schemas(plugin).items():
        spec.components.schema(name, component)
    for path, operations in {**_operations(), **dialect_routes.openapi_paths()}.items():
        for op in operations.values():
            op.setdefault("security", [{"bearer": []}])
            for status, name in _EVERY_OPERATION.items():
                op["responses"][status] = _ref("responses", name)
            _with_request_id(op["responses"])
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> Response:
    """Swagger UI over /openapi.json; every file it loads comes from this server."""
    return send_from_directory(DOCS_UI, "docs.html")


@bp.get("/docs/assets/<name>")
def docs_asset(name: str) -> Response:
    """Swagger UI's files from the installed package, and ours (only the ones the page uses)."""
    if name in SWAGGER_UI_ASSETS:
        return send_from_directory(SWAGGER_UI_DIST, name, max_age=ASSET_MAX_AGE_SECONDS)
    if name in DOCS_UI_ASSETS:
        return send_from_directory(DOCS_UI, name)
    abort(404)
