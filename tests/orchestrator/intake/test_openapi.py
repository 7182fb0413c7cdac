"""/openapi.json is a valid OpenAPI 3.1 document covering every route, with a request body per
model generated from the catalog (each example accepted by intake), operation ids, tags, the
401/429/503 answers with their headers and the events as ``webhooks``; /docs is Swagger UI served
from this server; the health routes answer."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from orchestrator.core import catalog
from orchestrator.core.clients import ALL_EVENT_TYPES
from orchestrator.intake.openapi import example_body, input_schema
from orchestrator.jobs.store import NewJob
from tests.orchestrator.model_inputs import INVALID_INPUTS, VALID_INPUTS

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def spec(http):
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    return answer.get_json()


def operations(spec):
    for path, item in {**spec["paths"], **spec["webhooks"]}.items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_openapi_is_a_valid_openapi_3_1_document(spec):
    assert spec["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(spec).validate()


def test_openapi_covers_every_api_route(spec, app):
    documented = {
        (re.sub(r"\{(\w+)\}", r"<\1>", path), method.upper())
        for path, ops in spec["paths"].items()
        for method in ops
    }
    routes = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/v1", "/api/v1"))  # ours and the gateway dialects'
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes and routes == documented, routes ^ documented
    gateway = spec["components"]["schemas"]["GatewayGeneration"]["properties"]
    assert {"model", "prompt", "image", "image_url"} <= set(gateway)
    for name in ("Job", "JobCreate", "Error", "ModelList", "JobList", "Event"):
        assert name in spec["components"]["schemas"]


def test_every_operation_has_a_unique_id_and_a_declared_tag(spec):
    declared = {tag["name"] for tag in spec["tags"]}
    ids = []
    for path, method, op in operations(spec):
        assert op.get("operationId"), (path, method)
        assert op.get("tags") and set(op["tags"]) <= declared, (path, method)
        ids.append(op["operationId"])
    assert len(ids) == len(set(ids)) >= 16


def test_every_api_operation_documents_401_429_and_503_with_retry_after(spec):
    responses = spec["components"]["responses"]
    for name in ("RateLimited", "Unavailable"):
        assert responses[name]["headers"]["Retry-After"] == {
            "$ref": "#/components/headers/Retry-After"
        }
    assert "WWW-Authenticate" in responses["Unauthorized"]["headers"]
    assert spec["components"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    for path, item in spec["paths"].items():
        for method, op in item.items():
            answers = op["responses"]
            assert answers["401"] == {"$ref": "#/components/responses/Unauthorized"}, path
            assert answers["429"] == {"$ref": "#/components/responses/RateLimited"}, path
            assert answers["503"] == {"$ref": "#/components/responses/Unavailable"}, path
            for status, answer in answers.items():
                if status.startswith(("4", "5")) and "$ref" not in answer:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_error_responses_have_the_error_shape_and_an_example(spec):
    for name, response in spec["components"]["responses"].items():
        media = response["content"]["application/json"]
        assert media["schema"] == {"$ref": "#/components/schemas/Error"}, name
        assert set(media["example"]["error"]) == {"code", "message", "details"}, name
    unavailable = spec["components"]["responses"]["Unavailable"]["content"]["application/json"]
    assert unavailable["example"]["error"]["code"] == "unavailable"


def test_create_job_body_is_a_oneof_keyed_by_model_with_one_branch_per_model(spec):
    schemas = spec["components"]["schemas"]
    create = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"] == {"$ref": "#/components/schemas/JobCreate"}
    job_create = schemas["JobCreate"]
    mapping = job_create["discriminator"]["mapping"]
    assert job_create["discriminator"]["propertyName"] == "model"
    assert set(mapping) == set(catalog.MODELS)
    assert [branch["$ref"] for branch in job_create["oneOf"]] == list(mapping.values())
    assert set(create["examples"]) == set(catalog.MODELS)
    for model_id, ref in mapping.items():
        branch = schemas[ref.rsplit("/", 1)[1]]
        assert branch["properties"]["model"] == {"type": "string", "const": model_id}
        assert branch["required"] == ["model", "input"]
        assert branch["additionalProperties"] is False
        assert branch["examples"] == [example_body(model_id)]
        assert create["examples"][model_id]["value"] == example_body(model_id)
        input_ref = branch["properties"]["input"]["$ref"].rsplit("/", 1)[1]
        assert schemas[input_ref] == input_schema(catalog.MODELS[model_id])


@pytest.mark.parametrize("model_id", list(catalog.MODELS))
def test_each_input_schema_is_the_catalogs_rules(model_id):
    spec = catalog.MODELS[model_id]
    schema = input_schema(spec)
    assert list(schema["properties"]) == [param.name for param in spec.parameters]
    assert schema.get("required", []) == [p.name for p in spec.parameters if p.required]
    for param in spec.parameters:
        prop = schema["properties"][param.name]
        assert prop["type"] == param.type
        assert prop.get("enum") == (None if param.allowed is None else list(param.allowed))
        assert prop.get("default", catalog.marshmallow.missing) == param.default
        assert (prop.get("minimum"), prop.get("maximum")) == (param.minimum, param.maximum)


@pytest.mark.parametrize("model_id", list(catalog.MODELS))
def test_the_published_schema_agrees_with_intake_on_valid_and_invalid_inputs(model_id):
    validator = Draft202012Validator(input_schema(catalog.MODELS[model_id]))
    for good in (VALID_INPUTS[model_id], catalog.EXAMPLE_INPUTS[model_id]):
        catalog.validate_input(model_id, good)
        validator.validate(good)
    bad, _ = INVALID_INPUTS[model_id]
    assert not validator.is_valid(bad)
    assert not validator.is_valid({**VALID_INPUTS[model_id], "no_such_param": 1})
    assert not validator.is_valid({**VALID_INPUTS[model_id], "prompt": "   "})


@pytest.mark.parametrize("model_id", list(catalog.MODELS))
def test_each_documented_example_is_accepted_by_intake(http, client_factory, sent_tasks, model_id):
    _, key = client_factory("docs-reader")
    answer = http.post(
        "/v1/jobs", json=example_body(model_id), headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 202, answer.get_json()
    job = answer.get_json()
    assert job["model"] == model_id and job["status"] == "queued"
    assert len(sent_tasks) == 1


def test_the_events_are_openapi_webhooks_with_standard_webhooks_headers(spec):
    webhooks = spec["webhooks"]
    assert set(webhooks) == set(ALL_EVENT_TYPES) >= {"job.completed", "job.failed", "job.canceled"}
    event = spec["components"]["schemas"]["Event"]
    assert event["required"] == ["id", "type", "created_at", "data"]
    assert event["properties"]["data"]["$ref"] == "#/components/schemas/Job"
    for event_type, item in webhooks.items():
        op = item["post"]
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header" and p["required"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
        body = op["requestBody"]["content"]["application/json"]["schema"]["allOf"]
        assert body[0] == {"$ref": "#/components/schemas/Event"}
        assert body[1]["properties"]["type"]["const"] == event_type
        assert {"2XX", "410", "default"} <= set(op["responses"])


def test_docs_is_swagger_ui_served_from_this_server(http):
    answer = http.get("/docs")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "swagger-ui" in page
    assert "True" not in page and "False" not in page
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert links and all(link.startswith("/") for link in links), links
    assert not re.search(r"https?://", page)
    for link in links:
        if link != "/openapi.json":
            asset = http.get(link)
            assert asset.status_code == 200 and asset.data, link
    script = http.get("/docs/assets/docs.js").get_data(as_text=True)
    assert '"/openapi.json"' in script and "validatorUrl: null" in script


def test_docs_assets_are_only_the_pages_files(http):
    for name in ("package.json", "..%2Fopenapi.py", "swagger-ui-bundle.js.map"):
        answer = http.get(f"/docs/assets/{name}")
        assert answer.status_code == 404
        assert answer.get_json()["error"]["code"] == "not_found"


def test_healthz_and_readyz(http):
    assert http.get("/healthz").get_json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["details"]["redis"] == "ok"


def test_readyz_503_when_redis_is_down(app, monkeypatch):
    import redis

    svc = app.extensions["orchestrator"]

    def down():
        raise redis.ConnectionError("down")

    monkeypatch.setattr(svc.redis, "ping", down)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503 and answer.get_json()["status"] == "unavailable"


def test_metrics_counts_jobs_by_status(http, svc):
    for _ in range(3):
        svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal"))
    answer = http.get("/metrics")
    assert answer.status_code == 200 and answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    assert 'orchestrator_jobs{status="queued"} 3.0' in text
    assert 'orchestrator_due{set="due:submit"} 3.0' in text
    assert "orchestrator_submissions_paused 0.0" in text


def test_the_error_code_enum_is_every_error_code(http):
    from orchestrator.core.error_codes import ErrorCode

    spec = http.get("/openapi.json").get_json()
    code = spec["components"]["schemas"]["JobError"]["properties"]["code"]
    assert code["enum"] == [c.value for c in ErrorCode]
    assert "upstream_unavailable" in code["enum"]


def test_every_answer_documents_request_id_and_429_its_ratelimit_fields(spec) -> None:
    components = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method in METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                name = response["$ref"].rsplit("/", 1)[1] if "$ref" in response else None
                resolved = components[name] if name else response
                assert "Request-Id" in resolved.get("headers", {}), (path, method, status)
    limited = set(components["RateLimited"]["headers"])
    assert {"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= limited
