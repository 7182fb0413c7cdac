"""Submitting one job (fakeredis, a scripted Pixazo): every outcome's next state, and the CAS."""

from __future__ import annotations

import pytest

from orchestrator.core import clock, enqueue, keys
from orchestrator.jobs.state import JobState
from orchestrator.upstream import pause, submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from tests.helpers import count_round_trips

S = JobState


class ScriptedPixazo:
    """Answers submits from a list; counts calls so tests can assert zero resends."""

    def __init__(self, *results: SubmitResult) -> None:
        self.results = list(results)
        self.calls: list[tuple[str, str, str]] = []

    def submit(self, path: str, body: dict, webhook_url: str, mode: str) -> SubmitResult:
        self.calls.append((path, webhook_url, mode))
        return self.results.pop(0)


def accepted(request_id: str = "pixverse_r1") -> SubmitResult:
    return SubmitResult(Outcome.ACCEPTED, http_status=202, request_id=request_id)


def test_accepted_binds_request_and_moves_to_submitted(svc, job_factory) -> None:
    job_id = job_factory(webhook_mode="sync")
    svc.pixazo = ScriptedPixazo(accepted())
    assert submission.submit(svc, job_id) == "submitted"
    raw = svc.jobs.get_raw(job_id)
    assert raw["status"] == "submitted" and raw["request_id"] == "pixverse_r1"
    assert raw["attempts"] == "1"
    assert svc.jobs.job_for_request("pixverse_r1") == job_id
    (_path, hook, mode) = svc.pixazo.calls[0]
    assert f"/webhooks/pixazo/{job_id}/" in hook and mode == "sync"
    assert svc.redis.zscore(keys.DUE_POLL, job_id) is not None
    attempt = [e for e in svc.jobs.timeline(job_id) if e.get("type") == "submit_attempt"]
    assert attempt[0]["outcome"] == "accepted" and attempt[0]["http_status"] == 202


# An accepted submit: the gate (state, pause, probe), the limiter, the claim, the job read, then
# one pipeline with the answer's records (timeline, counters, binding, lease) and the move.
ACCEPTED_SUBMIT_ROUND_TRIPS = 6


def test_an_accepted_submit_takes_six_round_trips(svc, job_factory, monkeypatch) -> None:
    """Issue 12: each round trip costs the worker ~0.2 ms of CPU; a submit took twelve. (A
    first submit of the process also loads the scripts it runs: a warm-up job does that.)"""
    warm_up, job_id = job_factory(), job_factory()
    svc.pixazo = ScriptedPixazo(accepted("pixverse_r0"), accepted())
    assert submission.submit(svc, warm_up) == "submitted"
    trips = count_round_trips(monkeypatch)
    assert submission.submit(svc, job_id) == "submitted"
    assert trips[0] == ACCEPTED_SUBMIT_ROUND_TRIPS
    assert svc.redis.zcard(keys.LIMITER_LEASES) == 0  # the lease went back with the answer
    assert svc.jobs.job_for_request("pixverse_r1") == job_id


def test_an_attempt_is_on_the_timeline_after_redis_forgot_the_script(svc, job_factory) -> None:
    """The answer's pipeline names the timeline script by its SHA; a Redis that restarted (or
    flushed its scripts) answers NOSCRIPT there, and the entry is appended again the usual way."""
    warm_up, job_id = job_factory(), job_factory()
    svc.pixazo = ScriptedPixazo(accepted("pixverse_r0"), accepted())
    assert submission.submit(svc, warm_up) == "submitted"
    svc.redis.script_flush()
    assert submission.submit(svc, job_id) == "submitted"
    attempts = [e for e in svc.jobs.timeline(job_id) if e.get("type") == "submit_attempt"]
    assert [e["outcome"] for e in attempts] == ["accepted"]


def test_a_submit_that_raises_gives_its_lease_back(svc, job_factory) -> None:
    job_id = job_factory()

    class Broken:
        def submit(self, *_args: object) -> SubmitResult:
            raise RuntimeError("a bug between the claim and the answer")

    svc.pixazo = Broken()
    with pytest.raises(RuntimeError):
        submission.submit(svc, job_id)
    assert svc.redis.zcard(keys.LIMITER_LEASES) == 0


def test_second_delivery_of_the_same_message_does_not_call_pixazo(svc, job_factory) -> None:
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(accepted())
    assert submission.submit(svc, job_id) == "submitted"
    assert submission.submit(svc, job_id) == "skipped"
    assert len(svc.pixazo.calls) == 1


def test_a_job_already_submitting_is_not_submitted_again(svc, job_factory) -> None:
    """The CAS queued -> submitting is the guard: whoever loses it never reaches Pixazo."""
    job_id = job_factory()
    assert svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING).applied
    svc.pixazo = ScriptedPixazo(accepted())
    assert submission.submit(svc, job_id) == "skipped"
    assert svc.pixazo.calls == []


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        (Outcome.REJECTED, 400, "upstream_rejected"),
        (Outcome.AUTH, 401, "upstream_auth"),
        (Outcome.AUTH, 403, "upstream_auth"),
    ],
)
def test_rejections_fail_at_once_with_one_event(
    svc, job_factory, sent_tasks, outcome, status, code
) -> None:
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(SubmitResult(outcome, http_status=status, message="no"))
    assert submission.submit(svc, job_id) == code
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == code
    assert [t for t, _ in sent_tasks].count(enqueue.DELIVER) == 1


def test_429_requeues_after_retry_after_at_least(svc, job_factory) -> None:
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(SubmitResult(Outcome.RETRYABLE, http_status=429, retry_after=7.0))
    before = clock.now()
    assert submission.submit(svc, job_id) == "retry"
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert svc.redis.zscore(keys.DUE_SUBMIT, job_id) >= before + 7.0


def test_retry_budget_then_upstream_unavailable(svc, job_factory, settings) -> None:
    svc.settings = settings.with_overrides(submit_retry_schedule=(1, 1, 1))
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(
        *[SubmitResult(Outcome.RETRYABLE, http_status=429) for _ in range(3)]
    )
    words = [submission.submit(svc, job_id) for _ in range(3)]
    assert words == ["retry", "retry", "upstream_unavailable"]
    assert svc.jobs.get(job_id)["error"]["code"] == "upstream_unavailable"


@pytest.mark.parametrize(
    "result",
    [
        SubmitResult(Outcome.UNKNOWN, message="ReadTimeout"),
        SubmitResult(Outcome.UNKNOWN, http_status=500, message="HTTP 500"),
    ],
)
def test_unknown_outcome_waits_for_the_grace_instead_of_resending(svc, job_factory, result) -> None:
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(result)
    before = clock.now()
    assert submission.submit(svc, job_id) == "unknown"
    assert svc.jobs.state_of(job_id) is S.SUBMIT_UNKNOWN
    due = svc.redis.zscore(keys.DUE_UNKNOWN, job_id)
    assert due >= before + svc.settings.unknown_grace_seconds
    assert submission.submit(svc, job_id) == "skipped"
    assert len(svc.pixazo.calls) == 1
    assert svc.jobs.get(job_id)["status"] == "queued"  # clients see a sub-state as queued


def test_402_pauses_everyone_and_keeps_the_job_queued(svc, job_factory, monkeypatch) -> None:
    alerts: list[str] = []
    monkeypatch.setattr(pause.sentry_sdk, "capture_message", lambda m, **_: alerts.append(m))
    first, second = job_factory(), job_factory()
    svc.pixazo = ScriptedPixazo(SubmitResult(Outcome.INSUFFICIENT_BALANCE, http_status=402))
    assert submission.submit(svc, first) == "paused"
    assert svc.jobs.state_of(first) is S.QUEUED
    assert pause.paused(svc.redis)["reason"] == "insufficient_balance"
    assert len(alerts) == 1
    assert submission.submit(svc, second) == "paused"  # not sent: paused for everyone
    assert len(svc.pixazo.calls) == 1
    assert svc.jobs.state_of(second) is S.QUEUED


def test_probe_submits_while_paused_and_its_acceptance_resumes(svc, job_factory) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "insufficient_balance", by="test")
    assert pause.claim_probe(svc.redis, job_id, 60)
    svc.pixazo = ScriptedPixazo(accepted())
    assert submission.submit(svc, job_id) == "submitted"
    assert pause.paused(svc.redis) is None


def test_an_accepted_submit_does_not_end_an_operators_pause(svc, job_factory) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "maintenance", by="ops")
    assert pause.claim_probe(svc.redis, job_id, 60)  # even a probe (there is none by beat)
    svc.pixazo = ScriptedPixazo(accepted())
    assert submission.submit(svc, job_id) == "submitted"
    assert pause.paused(svc.redis)["reason"] == "maintenance"


def test_throttled_submit_stays_queued(svc, job_factory, settings) -> None:
    job_id = job_factory()
    svc.limiter.acquire = lambda now: (None, 2.0)
    svc.pixazo = ScriptedPixazo()
    assert submission.submit(svc, job_id) == "throttled"
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert svc.pixazo.calls == []


def test_lease_is_released_after_the_submit(svc, job_factory) -> None:
    job_id = job_factory()
    svc.pixazo = ScriptedPixazo(accepted())
    submission.submit(svc, job_id)
    assert svc.limiter.in_flight(clock.now()) == 0


def test_backoff_is_full_jitter_with_retry_after_as_floor() -> None:
    schedule = (1, 2, 4)
    for _ in range(50):
        assert 0 <= submission.backoff_seconds(schedule, 2, None) <= 2
        assert 0 <= submission.backoff_seconds(schedule, 9, None) <= 4
        assert submission.backoff_seconds(schedule, 1, 3.0) >= 3.0
