"""The apiin.one and skills.video routes under ``/api/v1``: each request is translated
(``orchestrator/intake/dialects/``) and then goes through the same intake as ``POST /v1/jobs``
(``create.submit_job``: catalog validation, store, idempotency, enqueue), with our Bearer key,
rate limit and error shape; polls read the caller's own jobs (anyone else's id is the same 404).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from orchestrator.core.errors import ApiError
from orchestrator.core.services import current
from orchestrator.intake.api import NO_SUCH_JOB, _json_body, authenticated
from orchestrator.intake.create import submit_job
from orchestrator.intake.dialects import apiinone, skillsvideo
from orchestrator.intake.dialects.translation import Translation

bp = Blueprint("dialects", __name__, url_prefix="/api/v1")


def _create(translation: Translation) -> dict[str, Any]:
    job, _ = submit_job(
        current(),
        g.client,
        translation.job_request(),
        request.headers.get("Idempotency-Key"),
        warnings=list(translation.warnings),
    )
    return job


def _own_job(job_id: str) -> dict[str, Any]:
    job = current().jobs.get(job_id, g.client.id)
    if job is None:
        raise ApiError(404, "not_found", NO_SUCH_JOB)
    return job


def _answer(body: dict[str, Any], job_id: str) -> Response:
    response = jsonify(body)
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return response


@bp.post("/videos/generations")
@authenticated
def apiinone_create() -> Response:
    job = _create(apiinone.to_job(_json_body()))
    return _answer(apiinone.submitted(job), job["id"])


@bp.get("/tasks/<task_id>")
@authenticated
def apiinone_task(task_id: str) -> Response:
    return jsonify(apiinone.task(_own_job(task_id)))


@bp.post("/generation/pixverse/v6")
@authenticated
def skillsvideo_create() -> Response:
    translation = skillsvideo.to_job(_json_body())
    job = _create(translation)
    return _answer(skillsvideo.generation(job), job["id"])


@bp.get("/generation/<generation_id>")
@authenticated
def skillsvideo_generation(generation_id: str) -> Response:
    return jsonify(skillsvideo.generation(_own_job(generation_id)))


# --- /openapi.json -------------------------------------------------------------------------------

_ERROR = {"$ref": "#/components/schemas/Error"}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 255},
    "description": "Same key + same body returns the same job, kept 24 h",
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _json(_ERROR, "Error (our error shape)") for code in codes}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_STR = {"type": "string"}
_NULLABLE_OBJ = {"type": ["object", "null"]}
_APIINONE_BODY = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": {"type": "string", "enum": [apiinone.MODEL]},
        "prompt": _STR,
        "image": {"type": "string", "description": "Image URL: selects image-to-video"},
        "resolution": {
            "type": "string",
            "enum": ["720p", "1080p", "2160p"],
            "default": "720p",
            "description": "360p/540p cannot be honoured (422); 2160p without an image only",
        },
        "duration": {
            "type": "number",
            "default": 5,
            "description": "5 or 10 (3 and 7 also without an image); 8 cannot be honoured",
        },
        "resolution_ratio": {"type": "string", "enum": ["16:9", "4:3", "1:1", "3:4", "9:16"]},
        "generate_audio_switch": {"type": "boolean", "enum": [False]},
        "thinking_type": {"type": "string", "enum": ["auto"], "default": "auto"},
        "negative_prompt": _STR,
        "callback_url": _STR,
        "metadata": {"type": "object"},
    },
}
_APIINONE_TASK = {
    "type": "object",
    "properties": {
        "task_id": _STR,
        "id": _STR,
        "status": {"type": "string", "enum": sorted(set(apiinone.STATUS_WORDS.values()))},
        "model": _STR,
        "result": _NULLABLE_OBJ,
        "error": _NULLABLE_OBJ,
        "created_at": _STR,
        "completed_at": {"type": ["string", "null"]},
    },
}
_SKILLS_BODY = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": _STR,
        "feature": {"type": "string", "enum": list(skillsvideo.FEATURES)},
        "image_url": {"type": "string", "description": "Selects image-to-video"},
        "resolution": {"type": "string", "default": "720p"},
        "duration": {"type": "number", "minimum": 1, "maximum": 15, "default": 5},
        "negative_prompt": _STR,
        "style": {"type": "string"},
        "seed": {"type": "integer"},
        "generate_audio": {"type": "boolean", "default": False},
        "aspect_ratio": {"type": "string", "default": "16:9"},
        "generate_multi_clip": {"type": "boolean", "default": False},
        "thinking_type": {"type": "string", "enum": ["enabled", "disabled", "auto"]},
        "n": {"type": "integer", "enum": [1]},
        "callback_url": _STR,
        "metadata": {"type": "object"},
    },
}
_SKILLS_GENERATION = {
    "type": "object",
    "properties": {
        "id": _STR,
        "status": {
            "type": "string",
            "enum": list(dict.fromkeys(skillsvideo.STATUS_WORDS.values())),
        },
        "input": {"type": "object"},
        "usage": {"type": "object"},
        "output": _NULLABLE_OBJ,
        "code": _STR,
        "message": _STR,
        "warnings": {"type": "array", "items": {"type": "object"}},
    },
}


OPENAPI_TAG = "gateway dialects"  # their operations' tag in /openapi.json


def openapi_paths() -> dict[str, dict[str, Any]]:
    """This blueprint's operations for ``/openapi.json`` (the 401, 429 and 503 that every
    operation can answer are added there)."""
    create_errors = _errors("400", "401", "402", "409", "413", "422", "429")
    return {
        "/api/v1/videos/generations": {
            "post": {
                "operationId": "apiinoneCreateTask",
                "tags": [OPENAPI_TAG],
                "summary": "apiin.one: create a PixVerse 5.6 task (an ordinary job)",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _APIINONE_BODY}},
                },
                "responses": {
                    "200": _json(_APIINONE_TASK, "The task (new or replayed)"),
                    **create_errors,
                },
            }
        },
        "/api/v1/tasks/{task_id}": {
            "get": {
                "operationId": "apiinoneGetTask",
                "tags": [OPENAPI_TAG],
                "summary": "apiin.one: a task's status and, once completed, its result",
                "parameters": [_path_id("task_id")],
                "responses": {"200": _json(_APIINONE_TASK), **_errors("401", "404")},
            }
        },
        "/api/v1/generation/pixverse/v6": {
            "post": {
                "operationId": "skillsvideoCreateGeneration",
                "tags": [OPENAPI_TAG],
                "summary": "skills.video: create a PixVerse V6 generation (an ordinary job)",
                "parameters": [_IDEMPOTENCY],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _SKILLS_BODY}},
                },
                "responses": {
                    "200": _json(_SKILLS_GENERATION, "Generation submission accepted"),
                    **create_errors,
                },
            }
        },
        "/api/v1/generation/{generation_id}": {
            "get": {
                "operationId": "skillsvideoGetGeneration",
                "tags": [OPENAPI_TAG],
                "summary": "skills.video: a generation's status and, once completed, its output",
                "parameters": [_path_id("generation_id")],
                "responses": {"200": _json(_SKILLS_GENERATION), **_errors("401", "404")},
            }
        },
    }
