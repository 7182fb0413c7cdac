"""Budgets through the client API: the 402 on every intake route (ours and the gateway
dialects'), nothing stored or enqueued for it, and ``GET /v1/client``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orchestrator.core import budgets, keys
from orchestrator.core.budgets import UnpricedPolicy
from tests.orchestrator.intake.test_api import assert_error, auth, create

PRICED = {
    "model": "pixverse",
    "input": {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "720p", "duration": 5},
}
# Each intake route with a body of a priced model (pixverse 720p 5 s: 0.65 USD).
ROUTES = [
    ("/v1/jobs", PRICED),
    (
        "/v1/videos/generations",
        {"model": "pixverse-v5-6", "prompt": "a fox", "duration": 5, "resolution": "720p"},
    ),
    ("/api/v1/videos/generations", {"model": "pixverse-5-6", "prompt": "a fox", "duration": 5}),
]


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def acme(client_factory):
    return client_factory("acme")


def stored(svc) -> int:
    return int(svc.redis.zcard(keys.ALL_JOBS))


@pytest.mark.parametrize(("path", "body"), ROUTES)
def test_over_budget_is_402_in_our_error_shape_and_stores_nothing(
    svc, http, sent_tasks, acme, path, body
) -> None:
    client, key = acme
    svc.clients.update(client.id, monthly_budget_usd=Decimal("1.00"))
    first = http.post(path, json=body, headers=auth(key))
    assert first.status_code in (200, 202), first.get_data(as_text=True)
    jobs, tasks = stored(svc), len(sent_tasks)
    answer = http.post(path, json=body, headers={**auth(key), "Idempotency-Key": "again"})
    error = assert_error(answer, 402, "budget_exceeded")
    assert error["details"] == {"budget_usd": 1.0, "committed_usd": 0.65, "job_usd": 0.65}
    assert stored(svc) == jobs and len(sent_tasks) == tasks
    assert not svc.redis.exists(keys.idempotency(client.id, "again"))
    assert budgets.committed_micros(svc.redis, client.id) == 650_000


def test_the_skills_video_route_refuses_too(svc, http, sent_tasks, acme) -> None:
    client, key = acme
    svc.clients.update(client.id, monthly_budget_usd=Decimal(0), unpriced=UnpricedPolicy.REFUSE)
    answer = http.post("/api/v1/generation/pixverse/v6", json={"prompt": "x"}, headers=auth(key))
    assert_error(answer, 402, "budget_exceeded")
    assert stored(svc) == 0 and sent_tasks == []


def test_an_unpriced_model_under_refuse_is_402_saying_so(svc, http, sent_tasks, acme) -> None:
    client, key = acme
    svc.clients.update(client.id, unpriced=UnpricedPolicy.REFUSE)
    answer = create(http, key, "pixverse-v6-text-to-video")
    error = assert_error(answer, 402, "budget_exceeded")
    assert error["details"] == {"budget_usd": None, "committed_usd": 0.0, "job_usd": None}
    assert "no published price" in error["message"]
    assert stored(svc) == 0 and sent_tasks == []
    svc.clients.update(client.id, unpriced=UnpricedPolicy.ALLOW)
    assert create(http, key, "pixverse-v6-text-to-video").status_code == 202


def test_an_idempotent_replay_is_not_refused_and_not_counted(svc, http, sent_tasks, acme) -> None:
    client, key = acme
    svc.clients.update(client.id, monthly_budget_usd=Decimal("0.65"))
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    first = http.post("/v1/jobs", json=PRICED, headers=headers)
    again = http.post("/v1/jobs", json=PRICED, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert budgets.committed_micros(svc.redis, client.id) == 650_000


def test_get_client_shows_budget_committed_spend_and_the_month(svc, http, acme) -> None:
    client, key = acme
    assert (
        http.get("/v1/client", headers=auth(key)).get_json()["budget"]["monthly_budget_usd"] is None
    )
    svc.clients.update(client.id, monthly_budget_usd=Decimal("500"))
    http.post("/v1/jobs", json=PRICED, headers=auth(key))
    body = http.get("/v1/client", headers=auth(key)).get_json()
    assert body["id"] == client.id and body["name"] == "acme"
    budget = body["budget"]
    period = budgets.period_of()
    assert budget == {
        "monthly_budget_usd": 500.0,
        "committed_usd": 0.65,
        "period": period.name,
        "period_start": budget["period_start"],
        "period_end": budget["period_end"],
        "unpriced": "allow",
    }
    assert budget["period_start"].startswith(period.name + "-01T00:00:00")


def test_intake_warns_sentry_once_at_80_percent(svc, http, sent_tasks, acme, monkeypatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(budgets.sentry_sdk, "capture_message", lambda m, **kw: sent.append(m))
    client, key = acme
    svc.clients.update(client.id, monthly_budget_usd=Decimal("2.00"))
    for expected in (0, 0, 1, 1):  # 0.65, 1.30, 1.95 (>= 1.60), then refused
        http.post("/v1/jobs", json=PRICED, headers=auth(key))
        assert len(sent) == expected
    assert client.id in sent[0]


def test_openapi_names_the_402(http) -> None:
    spec = http.get("/openapi.json").get_json()
    assert "402" in spec["paths"]["/v1/jobs"]["post"]["responses"]
    assert "402" in spec["paths"]["/api/v1/videos/generations"]["post"]["responses"]
