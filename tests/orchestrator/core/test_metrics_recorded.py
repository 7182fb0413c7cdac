"""Each recording point counts what it should, once: submits, callbacks, deliveries, job
duration at the terminal move, event lag from the terminal status's receipt to the 2xx."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core import clock, ids, metrics
from orchestrator.core.tokens import callback_token
from orchestrator.jobs import actions
from orchestrator.jobs.state import UPSTREAM_RECEIVED_AT, JobState
from orchestrator.upstream import submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from orchestrator.upstream.statuses import apply_upstream
from webhooks.outbound import delivery
from webhooks.outbound.transport import Attempt

S = JobState
MODEL = "pixverse-v6-text-to-video"


@pytest.fixture(autouse=True)
def no_earlier_counts(svc):
    """``svc`` pointed the process recorder at this test's Redis; start from nothing."""
    metrics.RECORDER.discard()


def scrape(svc) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics.RECORDER.flush()
    registry = CollectorRegistry()
    registry.register(metrics.ClusterCollector(svc.redis))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


class OnePixazo:
    def __init__(self, result: SubmitResult) -> None:
        self.result = result

    def submit(self, *_: object) -> SubmitResult:
        return self.result


@pytest.mark.parametrize(
    ("result", "outcome"),
    [
        (SubmitResult(Outcome.ACCEPTED, http_status=202, request_id="pixverse_r1"), "accepted"),
        (SubmitResult(Outcome.UNKNOWN, http_status=500, message="500"), "unknown"),
        (SubmitResult(Outcome.REJECTED, http_status=400, message="bad"), "rejected"),
    ],
)
def test_a_submit_counts_its_model_and_outcome(svc, job_factory, result, outcome):
    job_id = job_factory(model=MODEL)
    svc.pixazo = OnePixazo(result)
    submission.submit(svc, job_id)
    submission.submit(svc, job_id)  # a redelivered message: skipped, not a second submit
    samples = scrape(svc)
    assert samples[("orchestrator_submits_total", (("model", MODEL), ("outcome", outcome)))] == 1
    assert sum(v for (n, _), v in samples.items() if n == "orchestrator_submits_total") == 1


def test_callbacks_count_new_duplicate_and_refused(app, svc, sent_tasks, job_factory):
    http = app.test_client()
    job_id = job_factory(S.SUBMITTED, request_id="pixverse_cb1")
    good = f"/webhooks/pixazo/{job_id}/{callback_token(svc.settings.secret_key, job_id)}"
    body = {"request_id": "pixverse_cb1", "status": "PROCESSING"}
    assert http.post(good, json=body).status_code == 200
    assert http.post(good, json=body).status_code == 200
    assert http.post(f"/webhooks/pixazo/{job_id}/{'0' * 64}", json=body).status_code == 404
    assert http.post(good, data="not json").status_code == 400
    samples = scrape(svc)
    count = {
        result: samples.get(("orchestrator_callbacks_total", (("result", result),)))
        for result in ("new", "duplicate", "refused")
    }
    assert count == {"new": 1, "duplicate": 1, "refused": 2}
    assert all("0" * 64 not in str(labels) for _, labels in samples)


def test_job_duration_is_observed_once_at_the_terminal_move(svc, job_factory):
    job_id = job_factory(S.SUBMITTED, model=MODEL)
    intake = ids.created_at(job_id)
    for _ in range(2):  # the second finds it terminal: no move, no observation
        svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.COMPLETED, now=intake + 42)
    samples = scrape(svc)
    labels = (("model", MODEL), ("status", "completed"))
    assert samples[("orchestrator_job_duration_seconds_count", labels)] == 1
    assert samples[("orchestrator_job_duration_seconds_sum", labels)] == pytest.approx(42, abs=0.01)
    assert samples[("orchestrator_job_duration_seconds_bucket", (("le", "60.0"), *labels))] == 1
    assert samples[("orchestrator_job_duration_seconds_bucket", (("le", "30.0"), *labels))] == 0


def test_ids_tell_when_they_were_made():
    assert ids.created_at(ids.new_id("job", 1_700_000_000.123)) == pytest.approx(1_700_000_000.123)


def deliver_with(monkeypatch, svc, event_id: str, status: int) -> str:
    monkeypatch.setattr(delivery, "post", lambda *a: Attempt(status, 120, ""))
    return delivery.deliver(svc, event_id)


def test_a_delivery_counts_its_outcome_duration_and_the_event_lag(
    monkeypatch, svc, job_factory, client_factory
):
    client, _ = client_factory("acme", "https://acme.example/hooks")
    job_id = job_factory(S.SUBMITTED, client=client, request_id="pixverse_d1")
    received = clock.now() - 7.0  # the callback arrived 7 s ago, its task ran late
    status = {"request_id": "pixverse_d1", "status": "COMPLETED", "output": None}
    applied = apply_upstream(svc, job_id, status, "callback", 60, received_at=received)
    assert applied.moved and applied.event_id
    # carried by the event's snapshot; the finished job keeps no copy (issue 12)
    event = delivery.get_event(svc, applied.event_id)
    assert event is not None and event.snapshot[UPSTREAM_RECEIVED_AT] == repr(received)
    assert UPSTREAM_RECEIVED_AT not in svc.jobs.get_raw(job_id)
    assert deliver_with(monkeypatch, svc, applied.event_id, 500) == "retry"
    svc.redis.hset(f"evt:{applied.event_id}", "due_at", repr(clock.now() - 1))
    assert deliver_with(monkeypatch, svc, applied.event_id, 200) == delivery.DELIVERED
    samples = scrape(svc)
    assert samples[("orchestrator_deliveries_total", (("outcome", "retry"),))] == 1
    assert samples[("orchestrator_deliveries_total", (("outcome", "delivered"),))] == 1
    assert samples[("orchestrator_delivery_duration_seconds_count", ())] == 2
    assert samples[("orchestrator_delivery_duration_seconds_sum", ())] == pytest.approx(0.24)
    assert samples[("orchestrator_event_lag_seconds_count", ())] == 1  # the 2xx only
    assert 7.0 <= samples[("orchestrator_event_lag_seconds_sum", ())] < 9.0


def test_an_event_with_no_upstream_status_has_no_lag(monkeypatch, svc, job_factory, client_factory):
    """A cancel or a deadline ends the job without Pixazo's word: nothing to measure from."""
    client, _ = client_factory("acme", "https://acme.example/hooks")
    job_id = job_factory(S.SUBMITTED, client=client)
    moved = svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.FAILED, emit=True)
    assert deliver_with(monkeypatch, svc, moved.event_id, 200) == delivery.DELIVERED
    samples = scrape(svc)
    assert samples[("orchestrator_deliveries_total", (("outcome", "delivered"),))] == 1
    assert samples.get(("orchestrator_event_lag_seconds_count", ()), 0) == 0


def test_a_retry_forgets_the_previous_generations_receipt(svc, job_factory):
    job_id = job_factory(S.SUBMITTED, request_id="pixverse_f1")
    failed = {"request_id": "pixverse_f1", "status": "FAILED", "error": "x"}
    applied = apply_upstream(svc, job_id, failed, "poll", 60)
    assert applied.moved and applied.event_id
    event = delivery.get_event(svc, applied.event_id)
    assert event is not None and event.snapshot.get(UPSTREAM_RECEIVED_AT)
    # the finished job keeps no copy (issue 12); one kept by an earlier version's job goes too
    svc.redis.hset(f"job:{job_id}", UPSTREAM_RECEIVED_AT, "1.0")
    assert actions.retry(svc, job_id, "ops", confirm_charge=True).ok
    assert UPSTREAM_RECEIVED_AT not in svc.jobs.get_raw(job_id)
