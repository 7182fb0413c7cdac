"""Every error answer has one shape: unknown routes, wrong methods, oversized bodies."""

from __future__ import annotations

import pytest


@pytest.fixture
def http(app):
    return app.test_client()


def shape(answer, status: int, code: str) -> None:
    assert answer.status_code == status
    assert answer.is_json
    body = answer.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and isinstance(body["error"]["details"], dict)


@pytest.mark.parametrize("path", ["/nope", "/v1/nothing", "/v2/jobs", "/webhooks/pixazo/x"])
def test_unknown_route_404(http, path):
    shape(http.get(path), 404, "not_found")
    shape(http.post(path, data="x"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/jobs/job_x/cancel"),
        ("delete", "/v1/jobs"),
        ("put", "/v1/models"),
        ("get", "/webhooks/pixazo/job_x/t"),
        ("post", "/healthz"),
        ("post", "/openapi.json"),
    ],
)
def test_wrong_method_405_with_allow(http, method, path):
    answer = getattr(http, method)(path)
    shape(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"]


@pytest.mark.parametrize("path", ["/v1/jobs", "/webhooks/pixazo/job_x/t"])
def test_oversized_body_413(http, app, client_factory, path):
    key = client_factory("acme")[1]
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    answer = http.post(
        path,
        data=b"{" + b" " * size,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    expected = 413 if path.startswith("/v1") else 404  # a bad token is refused before reading
    shape(answer, expected, "payload_too_large" if expected == 413 else "not_found")


def test_unexpected_exception_is_a_bare_500(app, monkeypatch, client_factory):
    from orchestrator.intake import api

    key = client_factory("acme")[1]
    monkeypatch.setattr(api.catalog, "describe_catalog", lambda: 1 / 0)
    answer = app.test_client().get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    shape(answer, 500, "internal_error")
    assert "ZeroDivision" not in answer.get_data(as_text=True)


@pytest.mark.parametrize("failure", ["ConnectionError", "BusyLoadingError", "TimeoutError"])
def test_a_store_outage_is_503_with_retry_after_not_500(app, client_factory, monkeypatch, failure):
    import redis.exceptions

    _, key = client_factory()
    svc = app.extensions["orchestrator"]

    def down(*args, **kwargs):
        raise getattr(redis.exceptions, failure)("Redis is loading the dataset in memory")

    monkeypatch.setattr(svc.jobs, "get", down)
    answer = app.test_client().get("/v1/jobs/job_x", headers={"Authorization": f"Bearer {key}"})
    shape(answer, 503, "unavailable")
    assert answer.headers["Retry-After"] == "1"
