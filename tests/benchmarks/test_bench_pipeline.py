"""The bench-pipeline's bookkeeping: what counts as lost, double, once, and the lag."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from benchmarks.bench_pipeline import Run, delivery_figures, job_of_webhook_url, percentile
from benchmarks.loadgen import Offered

PHASES = 1.0  # SIM_QUEUED_SECONDS + SIM_PROCESSING_SECONDS


def event(job_id: str, event_id: str, received_at: str, **overrides: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "event_id": event_id,
        "type": "job.completed",
        "verified": True,
        "status": 200,
        "received_at": received_at,
        **overrides,
    }


def sim_request(job_id: str, created_at: str) -> dict[str, Any]:
    return {"webhook_url": f"http://web/webhooks/pixazo/{job_id}/tok", "created_at": created_at}


def make_run(accepted: list[str], events: list[dict], sim_requests: list[dict]) -> Run:
    return Run(
        rate=60,
        offered=Offered(planned=len(accepted), accepted_ids=accepted),
        drain_seconds=1.0,
        drained=True,
        cpu={},
        memory_bytes=0,
        new_keys=0,
        finished=len(accepted),
        commands=Counter(),
        events=events,
        sim_requests=sim_requests,
    )


def test_job_of_webhook_url() -> None:
    assert job_of_webhook_url("http://h/webhooks/pixazo/job_1/abc") == "job_1"


def test_percentile_interpolates() -> None:
    values = [float(v) for v in range(101)]  # 0..100
    assert percentile(values, 0.5) == pytest.approx(50.0)
    assert percentile(values, 0.99) == pytest.approx(99.0)
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_figures_count_lost_double_once_and_charges() -> None:
    run = make_run(
        ["job_a", "job_b", "job_c", "job_d"],
        [
            event("job_a", "evt_1", "2026-01-01T00:00:01.050Z"),
            event("job_b", "evt_2", "2026-01-01T00:00:01.200Z"),
            event("job_b", "evt_3", "2026-01-01T00:00:01.300Z"),  # a second id: double
            event("job_c", "evt_4", "2026-01-01T00:00:01.100Z"),
            event("job_c", "evt_4", "2026-01-01T00:00:01.400Z"),  # same id again
            event("job_d", "evt_5", "2026-01-01T00:00:01.000Z", verified=False, status=400),
        ],
        [
            sim_request("job_a", "2026-01-01T00:00:00.000Z"),
            sim_request("job_b", "2026-01-01T00:00:00.000Z"),
            sim_request("job_c", "2026-01-01T00:00:00.000Z"),
            sim_request("job_c", "2026-01-01T00:00:00.000Z"),  # charged twice
        ],
    )
    figures = delivery_figures(run)
    assert figures["lost"] == 1  # job_d: only an unverified attempt
    assert figures["double_events"] == 1
    assert figures["charged_twice"] == 1
    assert figures["events_once"] == 1  # job_a only
    assert figures["received_again"] == 2  # job_b's second and job_c's second receipt
    assert figures["unverified"] == 1
    assert sorted(figures["lags_ms"]) == pytest.approx([50.0, 100.0, 100.0, 200.0])
