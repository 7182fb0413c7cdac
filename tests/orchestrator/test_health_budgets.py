"""``/metrics`` reports each client's committed spend this month (issue 13)."""

from __future__ import annotations

from orchestrator.core import budgets, keys


def test_metrics_report_committed_usd_per_client(app, svc, client_factory) -> None:
    a, _ = client_factory("a")
    b, _ = client_factory("b")
    svc.redis.set(keys.budget_committed(a.id, budgets.period_of().name), 1_950_000)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert f'orchestrator_client_committed_usd{{client="{a.id}"}} 1.95' in text
    assert f'orchestrator_client_committed_usd{{client="{b.id}"}} 0.0' in text
