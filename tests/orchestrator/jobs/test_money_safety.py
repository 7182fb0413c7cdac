"""Issue 8's money-safety defects, each as the interleaving that broke it (fakeredis with Lua).

Defect 1: a callback recorded inside the grace, whose apply task is slow or lost, must stop a
resubmit. Defect 2: a job Pixazo may have charged needs a confirmed retry, and a late answer
settles only the attempt that sent it. Defect 3: a retry starts a fresh budget and its own
events. Defect 11: a retried old job stays listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.core import clock, enqueue, keys
from orchestrator.jobs import actions, retention
from orchestrator.jobs.state import JobState
from orchestrator.services import Services
from orchestrator.upstream import submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from tests.helpers import reconcile_pass

S = JobState
MODEL = "pixverse-v6-text-to-video"
GRACE_PASSED = 1.0  # seconds past a due time


class Pixazo:
    """Answers submits from a script; ``during`` runs inside a call (another actor meanwhile)."""

    def __init__(self, *results: SubmitResult, during: Callable[[], None] | None = None) -> None:
        self.results, self.calls, self.during = list(results), 0, during

    def submit(self, *args: Any) -> SubmitResult:
        self.calls += 1
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


def accepted(request_id: str) -> SubmitResult:
    return SubmitResult(Outcome.ACCEPTED, 202, request_id)


UNKNOWN = SubmitResult(Outcome.UNKNOWN, message="ReadTimeout")
TOO_MANY = SubmitResult(Outcome.RETRYABLE, 429)
REJECTED = SubmitResult(Outcome.REJECTED, 400, message="bad prompt")


def run_submits(svc: Services, sent_tasks: list) -> None:
    """What the workers would do with every submit message enqueued so far."""
    for name, args in list(sent_tasks):
        if name == enqueue.SUBMIT:
            submission.submit(svc, args[0])
    sent_tasks.clear()


def record_callback(svc: Services, job_id: str, request_id: str, status: str = "QUEUED") -> None:
    """The receiver's part only: the apply task is slow (a backed-up queue) or lost."""
    body = {"request_id": request_id, "status": status}
    assert svc.inbox.record(job_id, body, "{}").inbox_id


def tick_past(svc: Services, seconds: float) -> None:
    reconcile_pass(svc, now=clock.now() + seconds + GRACE_PASSED)


# ---------------------------------------------------------------- defect 1: callback vs resubmit


def test_a_recorded_but_unapplied_callback_stops_the_resubmit(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    svc.pixazo = Pixazo(UNKNOWN, accepted("pixverse_second"))
    submission.submit(svc, job_id)
    record_callback(svc, job_id, "pixverse_first")
    tick_past(svc, svc.settings.unknown_grace_seconds)
    run_submits(svc, sent_tasks)
    assert svc.pixazo.calls == 1
    raw = svc.jobs.get_raw(job_id)
    assert raw["request_id"] == "pixverse_first" and raw["status"] == S.SUBMITTED


def test_a_callback_for_a_submit_whose_worker_died_stops_the_resubmit(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, due_at=clock.now())
    record_callback(svc, job_id, "pixverse_lost_worker", "PROCESSING")
    tick_past(svc, 0)  # beat: the submit never finished -> unknown
    tick_past(svc, svc.settings.unknown_grace_seconds)
    svc.pixazo = Pixazo(accepted("pixverse_second"))
    run_submits(svc, sent_tasks)
    assert svc.pixazo.calls == 0
    assert svc.jobs.get_raw(job_id)["request_id"] == "pixverse_lost_worker"


def test_a_callback_recorded_while_requeued_stops_the_next_submit(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    svc.pixazo = Pixazo(UNKNOWN)
    submission.submit(svc, job_id)
    tick_past(svc, svc.settings.unknown_grace_seconds)  # grace over, nothing heard: queued
    assert svc.jobs.state_of(job_id) is S.QUEUED
    record_callback(svc, job_id, "pixverse_first")  # ...and now the first submit speaks
    run_submits(svc, sent_tasks)
    assert svc.pixazo.calls == 1 and svc.jobs.state_of(job_id) is S.SUBMITTED


# --------------------------------------------------- defect 2: charged jobs need a confirmation


def test_a_job_failed_after_unknown_outcomes_needs_a_confirmed_retry(
    svc, job_factory, settings, sent_tasks
) -> None:
    svc.settings = settings.with_overrides(submit_retry_schedule=(1,))
    job_id = job_factory()
    svc.pixazo = Pixazo(UNKNOWN)
    submission.submit(svc, job_id)
    tick_past(svc, svc.settings.unknown_grace_seconds)
    raw = svc.jobs.get_raw(job_id)
    assert raw["status"] == S.FAILED and not raw.get("request_id")
    refused = actions.retry(svc, job_id, "ops")
    assert not refused.ok and refused.data["needs_confirmation"]
    assert svc.jobs.state_of(job_id) is S.FAILED
    bulk = actions.retry_failed(svc, "ops", "upstream_unavailable")
    assert not bulk.ok and bulk.data["charged"] == 1
    assert actions.retry(svc, job_id, "ops", confirm_charge=True).ok


def test_a_job_failed_by_its_deadline_mid_submit_needs_a_confirmed_retry(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, due_at=clock.now() + 60)
    tick_past(svc, svc.settings.job_deadline_seconds)
    assert svc.jobs.get(job_id)["error"]["code"] == "timeout"
    assert actions.retry(svc, job_id, "ops").data["needs_confirmation"]


def test_a_job_rejected_outright_is_retried_without_confirmation(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    svc.pixazo = Pixazo(REJECTED)
    submission.submit(svc, job_id)
    assert actions.retry(svc, job_id, "ops").ok


def test_a_late_202_settles_only_the_attempt_that_sent_it(svc, job_factory, sent_tasks) -> None:
    """Attempt A hangs; the deadline fails the job; an operator retries; attempt B claims it;
    then A's 202 arrives. It must not bind A's request to B's claim."""
    job_id = job_factory()

    def meanwhile() -> None:
        tick_past(svc, svc.settings.job_deadline_seconds)
        assert actions.retry(svc, job_id, "ops", confirm_charge=True).ok
        claim = svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING)
        assert claim.applied  # attempt B holds the job now

    svc.pixazo = Pixazo(accepted("pixverse_attempt_a"), during=meanwhile)
    submission.submit(svc, job_id)
    raw = svc.jobs.get_raw(job_id)
    assert raw["status"] == S.SUBMITTING and raw.get("request_id") in (None, "")
    assert "pixverse_attempt_a" in raw["retired_request_ids"]


# ------------------------------------------------ defect 3: a retry is a fresh generation


def test_a_retry_starts_a_fresh_attempt_budget(svc, job_factory, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(submit_retry_schedule=(1, 1, 1))
    job_id = job_factory()
    svc.pixazo = Pixazo(TOO_MANY)
    for _ in range(3):
        svc.redis.zadd(keys.DUE_SUBMIT, {job_id: 0})
        submission.submit(svc, job_id)
    assert svc.jobs.get(job_id)["error"]["code"] == "upstream_unavailable"
    assert actions.retry(svc, job_id, "ops").ok
    sent_tasks.clear()
    assert submission.submit(svc, job_id) == "retry"
    assert svc.jobs.state_of(job_id) is S.QUEUED


def test_each_retry_generation_gets_its_own_event(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    svc.pixazo = Pixazo(REJECTED)
    submission.submit(svc, job_id)
    assert actions.retry(svc, job_id, "ops").ok
    submission.submit(svc, job_id)
    events = svc.jobs.event_ids(job_id)
    assert len(events) == 2 and len(set(events.values())) == 2
    delivered = {args[0] for name, args in sent_tasks if name == enqueue.DELIVER}
    assert delivered == set(events.values())


# ------------------------------------------------------------ defect 11: retried jobs listed


def test_a_retried_old_job_stays_in_the_lists(svc, job_factory, sent_tasks) -> None:
    long_ago = clock.now() - svc.retention_seconds - svc.settings.job_deadline_seconds - 3600
    job_id = job_factory(model=MODEL, now=long_ago)
    svc.pixazo = Pixazo(REJECTED)
    submission.submit(svc, job_id)
    assert actions.retry(svc, job_id, "ops").ok
    retention.trim(svc)
    raw = svc.jobs.get_raw(job_id)
    assert svc.redis.zscore(keys.ALL_JOBS, job_id) is not None
    assert svc.redis.zscore(keys.status_index("queued"), job_id) is not None
    assert svc.redis.zscore(keys.client_index(raw["client_id"]), job_id) is not None
    assert svc.redis.zscore(keys.model_index(MODEL), job_id) is not None
