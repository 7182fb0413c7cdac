"""Cluster-wide metrics over real processes: a scrape of the web process (gunicorn) shows what
the worker (submit, callback apply) and the delivery process (attempts, event lag) counted."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import wait_for
from tests.orchestrator.model_inputs import VALID_INPUTS
from tests.system.lifecycle_helpers import submit, wait_events_settled, wait_terminal

pytestmark = pytest.mark.integration
MODEL = "pixverse-v6-text-to-video"
FLUSH_WAIT_SECONDS = 15.0  # processes flush every second; a scrape may land on either web worker
SETTLE_SECONDS = 2.0  # > the flush interval (1 s)


def scrape(web: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = requests.get(f"{web}/metrics", timeout=10)
    assert answer.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_one_scrape_of_web_shows_the_worker_and_delivery_processes_counts(system):
    time.sleep(SETTLE_SECONDS)  # earlier tests' last counts land before the baseline
    before = scrape(system.web)
    _, key = system.new_client("metrics")
    answer = submit(system, key, MODEL, VALID_INPUTS[MODEL])
    assert answer.status_code == 202 and answer.headers["Request-Id"]
    job_id = answer.json()["id"]
    assert wait_terminal(system, key, job_id)["status"] == "completed"
    wait_events_settled(system, job_id)
    completed = (("model", MODEL), ("status", "completed"))
    wanted = {
        ("orchestrator_submits_total", (("model", MODEL), ("outcome", "accepted"))): 1,
        ("orchestrator_callbacks_total", (("result", "new"),)): 1,
        ("orchestrator_deliveries_total", (("outcome", "delivered"),)): 1,
        ("orchestrator_job_duration_seconds_count", completed): 1,
        ("orchestrator_event_lag_seconds_count", ()): 1,
    }

    def delta() -> dict:
        after = scrape(system.web)
        return {name: value - before.get(name, 0) for name, value in after.items()}

    def all_counted() -> dict | None:
        got = delta()
        return got if all(got.get(name, 0) >= n for name, n in wanted.items()) else None

    got = wait_for(all_counted, FLUSH_WAIT_SECONDS, every=0.5, what="cluster-wide counts")
    for name, n in wanted.items():
        assert got[name] == n, name
    assert 0 < got[("orchestrator_job_duration_seconds_sum", completed)] < 60
    assert 0 < got[("orchestrator_event_lag_seconds_sum", ())] < 30
    assert got[("orchestrator_delivery_duration_seconds_count", ())] >= 1
    created = (("method", "POST"), ("route", "/v1/jobs"), ("status", "202"))
    assert got[("orchestrator_http_requests_total", created)] == 1
    assert any(name == "orchestrator_queue_depth" for name, _ in got)
    assert job_id not in str(got) and key not in str(got)
