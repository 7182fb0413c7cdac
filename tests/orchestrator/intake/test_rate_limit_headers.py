"""A 429 rate_limited tells the client its quota, what is left and when the window resets
(IETF RateLimit header fields) next to Retry-After."""

from __future__ import annotations


def test_429_carries_ratelimit_headers(app, svc, client_factory):
    app.extensions["orchestrator"].settings = svc.settings.with_overrides(
        client_rate_limit_per_minute=2
    )
    http = app.test_client()
    headers = {"Authorization": f"Bearer {client_factory('acme')[1]}"}
    assert [http.get("/v1/models", headers=headers).status_code for _ in range(2)] == [200, 200]
    answer = http.get("/v1/models", headers=headers)
    assert answer.status_code == 429
    assert answer.get_json()["error"]["code"] == "rate_limited"
    assert answer.headers["RateLimit-Limit"] == "2"
    assert answer.headers["RateLimit-Remaining"] == "0"
    reset = int(answer.headers["RateLimit-Reset"])
    assert 1 <= reset <= 61 and reset == int(answer.headers["Retry-After"])
    assert answer.headers["Request-Id"].startswith("req_")
