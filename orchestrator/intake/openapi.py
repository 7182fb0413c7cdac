"""``/openapi.json`` generated from the marshmallow schemas, and ``/docs`` that renders it.

The page is rendered on the server from the spec itself, so it needs no CDN and no build step.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, jsonify, render_template

from orchestrator.intake import dialect_routes, schemas

bp = Blueprint("docs", __name__, template_folder="templates")
API_TITLE = "Pixazo video job orchestrator"
API_VERSION = "1.0.0"

_ERRORS = {
    "400": "Not JSON",
    "401": "Missing or wrong API key",
    "402": "budget_exceeded (details: budget_usd, committed_usd, job_usd)",
    "404": "Not found (or another client's)",
    "409": "Conflict",
    "413": "Body too large",
    "422": "Validation error (details map fields)",
    "429": "Rate limited (see Retry-After)",
}
_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key + same body returns the same job (200), kept 24 h",
}


def _responses(ok: str, schema: str, *errors: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        ok: {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }
    for code in errors:
        out[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return out


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _operations() -> dict[str, dict[str, Any]]:
    job_ok = _responses("202", "Job", "400", "401", "402", "409", "413", "422", "429")
    job_ok["200"] = {
        "description": "Replayed by Idempotency-Key",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}},
    }
    list_params = [
        {"name": "status", "in": "query", "schema": {"type": "string"}},
        {"name": "model", "in": "query", "schema": {"type": "string"}},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
    ]
    return {
        "/v1/jobs": {
            "post": {
                "summary": "Create a video job",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body("JobCreate"),
                "responses": job_ok,
            },
            "get": {
                "summary": "List your jobs, newest first",
                "parameters": list_params,
                "responses": _responses("200", "JobList", "401", "422"),
            },
        },
        "/v1/videos/generations": {
            "post": {
                "summary": "Create a job from a gateway-style flat body (model aliases)",
                "parameters": [_IDEMPOTENCY],
                "requestBody": _body("GatewayGeneration"),
                "responses": job_ok,
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "Get a job",
                "parameters": [_JOB_ID],
                "responses": _responses("200", "Job", "401", "404"),
            },
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job that is not terminal",
                "parameters": [_JOB_ID],
                "responses": _responses("200", "Job", "401", "404", "409"),
            },
        },
        "/v1/models": {
            "get": {
                "summary": "The model catalog: parameters, allowed values, defaults",
                "responses": _responses("200", "ModelList", "401"),
            },
        },
        "/v1/client": {
            "get": {
                "summary": "Your client settings",
                "responses": _responses("200", "Client", "401"),
            },
            "patch": {
                "summary": "Set your endpoint and event types",
                "requestBody": _body("ClientUpdate"),
                "responses": _responses("200", "Client", "401", "422"),
            },
        },
    }


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Submit PixVerse video jobs; receive signed result webhooks."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("JobCreate", schemas.JobCreateSchema),
        ("GatewayGeneration", schemas.GatewayGenerationSchema),
        ("Job", schemas.JobSchema),
        ("JobList", schemas.JobListSchema),
        ("Error", schemas.ErrorSchema),
        ("ModelList", schemas.ModelListSchema),
        ("Client", schemas.ClientSchema),
        ("ClientUpdate", schemas.ClientUpdateSchema),
    ):
        spec.components.schema(name, schema=schema)
    for path, operations in {**_operations(), **dialect_routes.openapi_paths()}.items():
        for op in operations.values():
            op.setdefault("security", [{"bearer": []}])
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(build_spec())


@bp.get("/docs")
def docs() -> str:
    return render_template("docs.html", spec=build_spec())
