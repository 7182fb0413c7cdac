"""/openapi.json is a valid OpenAPI 3 document covering every route; /docs renders it;
the health routes answer."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from orchestrator.jobs.store import NewJob


@pytest.fixture
def http(app):
    return app.test_client()


def test_openapi_is_valid_and_covers_every_api_route(http, app):
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    spec = answer.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
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
    assert "/v1/videos/generations" in spec["paths"]
    gateway = spec["components"]["schemas"]["GatewayGeneration"]["properties"]
    assert {"model", "prompt", "image", "image_url"} <= set(gateway)
    for name in ("Job", "JobCreate", "Error", "ModelList", "JobList"):
        assert name in spec["components"]["schemas"]


def test_docs_renders_every_path(http):
    answer = http.get("/docs")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    spec = http.get("/openapi.json").get_json()
    for path in spec["paths"]:
        assert path in page, path


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
