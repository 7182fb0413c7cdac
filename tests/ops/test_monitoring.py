"""The shipped Grafana dashboard and Prometheus alert rules only name metrics that /metrics
exposes, and the alerts the on-call engineer needs are there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from orchestrator.core import broker, enqueue

MONITORING = Path(__file__).resolve().parents[2] / "ops" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "prometheus-alerts.yml"
METRIC_NAME = re.compile(r"\borchestrator_[A-Za-z0-9_]+")
TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
REQUIRED_ALERTS = {
    "OrchestratorSubmissionsPaused",
    "OrchestratorOverdueWork",
    "OrchestratorDeadLetters",
    "OrchestratorDeliveryFailureRate",
    "OrchestratorEventLagP99",
}


@pytest.fixture
def exposed(app, monkeypatch) -> dict[str, str]:
    """Metric name -> type, from a scrape of the app's /metrics (the broker stood in for)."""
    monkeypatch.setattr(broker, "queue_depths", lambda url, queues: dict.fromkeys(queues, 0))
    text = app.test_client().get("/metrics").get_data(as_text=True)
    return dict(TYPE_LINE.findall(text))


def alert_rules() -> list[dict]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_expressions() -> list[str]:
    def walk(panels: list[dict]) -> list[str]:
        found = []
        for panel in panels:
            found += [t["expr"] for t in panel.get("targets", [])]
            found += walk(panel.get("panels", []))
        return found

    return walk(json.loads(DASHBOARD.read_text())["panels"])


def expressions() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_expressions()


def names_in(expr: str) -> set[str]:
    return set(METRIC_NAME.findall(expr))


def is_exposed(name: str, exposed: dict[str, str]) -> bool:
    if name in exposed:
        return exposed[name] != "histogram"  # a histogram is read through its series
    base, suffix = name.rsplit("_", 1)
    return f"_{suffix}" in HISTOGRAM_SERIES and exposed.get(base) == "histogram"


def test_every_metric_in_every_expression_is_exposed(exposed):
    used = {name for expr in expressions() for name in names_in(expr)}
    assert len(used) >= 10
    missing = sorted(name for name in used if not is_exposed(name, exposed))
    assert missing == [], f"not exposed by /metrics: {missing}"


def test_the_contract_metrics_are_all_exposed(exposed):
    contract = {
        "orchestrator_http_requests_total": "counter",
        "orchestrator_http_request_duration_seconds": "histogram",
        "orchestrator_submits_total": "counter",
        "orchestrator_callbacks_total": "counter",
        "orchestrator_deliveries_total": "counter",
        "orchestrator_delivery_duration_seconds": "histogram",
        "orchestrator_job_duration_seconds": "histogram",
        "orchestrator_event_lag_seconds": "histogram",
        "orchestrator_jobs": "gauge",
        "orchestrator_queue_depth": "gauge",
        "orchestrator_overdue": "gauge",
    }
    assert {name: exposed.get(name) for name in contract} == contract
    assert set(enqueue.ALL_QUEUES)  # queue_depth's label values come from here


def test_the_name_check_catches_a_metric_that_does_not_exist(exposed):
    assert not is_exposed("orchestrator_submit_total", exposed)
    assert not is_exposed("orchestrator_jobs_bucket", exposed)  # a gauge has no buckets
    assert not is_exposed("orchestrator_event_lag_seconds", exposed)  # no bare histogram series
    assert is_exposed("orchestrator_event_lag_seconds_bucket", exposed)


def test_the_required_alerts_are_shipped_with_a_summary():
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) >= REQUIRED_ALERTS
    for rule in rules.values():
        assert names_in(rule["expr"]) and rule["annotations"]["summary"]
    assert "histogram_quantile(0.99" in rules["OrchestratorEventLagP99"]["expr"]


def test_the_dashboard_shows_backlog_rates_latencies_lag_overdue_and_dead_letters():
    used = {name for expr in dashboard_expressions() for name in names_in(expr)}
    assert {
        "orchestrator_queue_depth",
        "orchestrator_overdue",
        "orchestrator_dead_deliveries",
        "orchestrator_submits_total",
        "orchestrator_deliveries_total",
        "orchestrator_event_lag_seconds_bucket",
        "orchestrator_http_request_duration_seconds_bucket",
        "orchestrator_job_duration_seconds_bucket",
    } <= used
    assert any("histogram_quantile(0.95" in expr for expr in dashboard_expressions())
