"""Every HTTP answer carries a Request-Id and is counted under its route pattern."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core import metrics
from orchestrator.core.tokens import callback_token


@pytest.fixture
def http(app):
    metrics.RECORDER.discard()
    return app.test_client()


def samples(http) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = http.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize("path", ["/healthz", "/v1/jobs", "/nowhere", "/openapi.json"])
def test_every_answer_has_a_fresh_request_id(http, path):
    first, second = http.get(path), http.get(path)
    assert first.headers["Request-Id"].startswith("req_")
    assert first.headers["Request-Id"] != second.headers["Request-Id"]


@pytest.mark.parametrize("header", ["X-Request-Id", "Request-Id"])
def test_a_well_formed_incoming_id_is_kept(http, header):
    answer = http.get("/healthz", headers={header: "lb-7f3a.91:2"})
    assert answer.headers["Request-Id"] == "lb-7f3a.91:2"


@pytest.mark.parametrize(
    "value", ["x" * 65, "has space", "<script>", "-leading-dash", "a\u00e9b", "a/b"]
)
def test_a_malformed_or_long_incoming_id_is_replaced(http, value):
    answer = http.get("/healthz", headers={"X-Request-Id": value})
    assert answer.headers["Request-Id"].startswith("req_")


def test_requests_are_counted_by_route_pattern_never_by_path(http, svc, job_factory):
    job_id = job_factory()
    token = callback_token(svc.settings.secret_key, job_id)
    http.get(f"/v1/jobs/{job_id}")  # 401: no key
    http.post(f"/webhooks/pixazo/{job_id}/{token}", data="{")  # 400
    http.get(f"/nowhere/{job_id}")
    http.open("/healthz", method="PROPFIND")
    got = samples(http)
    requests = {
        labels: value for (name, labels), value in got.items() if name.endswith("requests_total")
    }
    assert requests[(("method", "GET"), ("route", "/v1/jobs/<job_id>"), ("status", "401"))] == 1
    assert (
        requests[
            (("method", "POST"), ("route", "/webhooks/pixazo/<job_id>/<token>"), ("status", "400"))
        ]
        == 1
    )
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert requests[(("method", "OTHER"), ("route", "unmatched"), ("status", "405"))] == 1
    exposed = str(got)
    assert job_id not in exposed and token not in exposed
    assert got[("orchestrator_http_request_duration_seconds_count", ())] >= 4
