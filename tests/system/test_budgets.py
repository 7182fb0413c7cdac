"""Issue 13 with real processes (gunicorn, Celery workers, beat, the simulator, a real Redis):
the budget check and the commit are one atomic step, so 50 concurrent intakes racing a budget
that fits exactly 10 jobs get exactly 10 accepted and 40 refused, and Pixazo sees 10 submits;
a job Pixazo ends with ERROR gives its cost back."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from orchestrator.core import keys
from tests.conftest import System, wait_for
from tests.system.resilience_support import cli

pytestmark = pytest.mark.integration

RACERS = 50
FITS = 10
JOB_USD = 0.65  # pixverse (v5.6) 720p 5 s
BUDGET_USD = "6.50"  # exactly FITS jobs
PRICED = {
    "model": "pixverse",
    "input": {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "720p", "duration": 5},
}


def _race(system: System, api_key: str) -> list[requests.Response]:
    """RACERS intakes over HTTP, released together by a barrier."""
    barrier = threading.Barrier(RACERS)

    def one(i: int) -> requests.Response:
        session = system.api(api_key)
        body = {**PRICED, "metadata": {"racer": i}}
        barrier.wait()
        return session.post(f"{system.web}/v1/jobs", json=body, timeout=30)

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_50_concurrent_intakes_never_overshoot_a_budget_of_10_jobs(system: System) -> None:
    client, key = system.new_client("budgeted")
    set_budget = cli(system, "clients", "update", client.id, "--monthly-budget-usd", BUDGET_USD)
    assert set_budget.returncode == 0, set_budget.stderr

    answers = _race(system, key)
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 402]
    assert (len(accepted), len(refused)) == (FITS, RACERS - FITS), [a.status_code for a in answers]
    for answer in refused:
        error = answer.json()["error"]
        assert set(answer.json()) == {"error"} and error["code"] == "budget_exceeded"
        assert error["message"]
        assert error["details"] == {
            "budget_usd": float(BUDGET_USD),
            "committed_usd": float(BUDGET_USD),  # a refusal only ever sees a full budget
            "job_usd": JOB_USD,
        }
    assert system.redis.zcard(keys.ALL_JOBS) == FITS  # refused jobs stored nothing

    job_ids = [a.json()["id"] for a in accepted]
    wait_for(
        lambda: all(system.job(key, j)["status"] == "completed" for j in job_ids),
        90,
        what="the accepted jobs to complete",
    )
    stats = system.sim_stats()
    assert stats["submits_received"] == FITS and stats["submits_accepted"] == FITS

    budget = system.api(key).get(f"{system.web}/v1/client", timeout=10).json()["budget"]
    assert budget["monthly_budget_usd"] == float(BUDGET_USD)
    assert budget["committed_usd"] == float(BUDGET_USD)  # completed jobs were charged: kept
    metrics = requests.get(f"{system.web}/metrics", timeout=10).text
    assert f'orchestrator_client_committed_usd{{client="{client.id}"}} 6.5' in metrics

    # The month is full: one more is refused, and raising the budget lets it through.
    again = system.api(key).post(f"{system.web}/v1/jobs", json=PRICED, timeout=30)
    assert again.status_code == 402
    raised = cli(system, "clients", "update", client.id, "--monthly-budget-usd", "7.15")
    assert raised.returncode == 0, raised.stderr
    _accepted_and_finished(system, key)


def _accepted_and_finished(system: System, key: str) -> None:
    """One more job is accepted; waiting for its end leaves nothing in flight for the next test."""
    answer = system.api(key).post(f"{system.web}/v1/jobs", json=PRICED, timeout=30)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    wait_for(lambda: system.job(key, job_id)["status"] == "completed", 60, what="the last job")


def test_a_job_pixazo_ends_with_error_gives_its_cost_back(system: System) -> None:
    client, key = system.new_client("errored")
    assert (
        cli(system, "clients", "update", client.id, "--monthly-budget-usd", "0.65").returncode == 0
    )
    system.sim_config(error_rate=1.0)
    first = system.api(key).post(f"{system.web}/v1/jobs", json=PRICED, timeout=30)
    assert first.status_code == 202
    blocked = system.api(key).post(f"{system.web}/v1/jobs", json=PRICED, timeout=30)
    assert blocked.status_code == 402  # the first one holds the whole budget
    job_id = first.json()["id"]
    done = wait_for(
        lambda: (j := system.job(key, job_id))["status"] == "failed" and j, 60, what="ERROR"
    )
    assert done["error"]["code"] == "upstream_error"
    client_view = system.api(key).get(f"{system.web}/v1/client", timeout=10).json()
    assert client_view["budget"]["committed_usd"] == 0.0
    system.sim_config(error_rate=0.0)
    _accepted_and_finished(system, key)
