"""Beat's tick over fakeredis: what each due set does, bounded batches, the lock."""

from __future__ import annotations

from orchestrator.core import clock, enqueue, keys
from orchestrator.jobs.state import JobState
from orchestrator.reconcile import steps
from orchestrator.services import Services
from orchestrator.upstream import pause, submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from orchestrator.upstream.statuses import apply_upstream

S = JobState


def sent(sent_tasks: list, task: str) -> list[str]:
    return [args[0] for name, args in sent_tasks if name == task]


class _Pixazo:
    def __init__(self, result: SubmitResult) -> None:
        self.result, self.calls = result, 0

    def submit(self, *args: object) -> SubmitResult:
        self.calls += 1
        return self.result


def make_unknown(svc: Services, job_id: str) -> None:
    svc.pixazo = _Pixazo(SubmitResult(Outcome.UNKNOWN, message="ReadTimeout"))
    assert submission.submit(svc, job_id) == "unknown"


def test_tick_is_skipped_while_another_holds_the_lock(svc) -> None:
    svc.redis.set(steps.LOCK_KEY, "other", px=10_000)
    assert steps.tick(svc) is None
    assert svc.redis.get(steps.LOCK_KEY) == "other"


def test_tick_releases_its_lock(svc) -> None:
    assert steps.tick(svc) is not None
    assert svc.redis.get(steps.LOCK_KEY) is None


def test_submitting_past_its_time_becomes_unknown_not_resent(svc, job_factory, sent_tasks):
    """A worker killed between send and record leaves the job in submitting."""
    job_id = job_factory()
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, due_at=clock.now() + 10)
    steps.tick(svc, now=clock.now() + 5)
    assert svc.jobs.state_of(job_id) is S.SUBMITTING
    report = steps.tick(svc, now=clock.now() + 11)
    assert report.counts.get("submitting") == 1
    assert svc.jobs.state_of(job_id) is S.SUBMIT_UNKNOWN
    assert job_id not in sent(sent_tasks, enqueue.SUBMIT)


def test_unknown_is_resubmitted_only_after_the_grace_and_says_why(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    make_unknown(svc, job_id)
    grace = svc.settings.unknown_grace_seconds
    steps.tick(svc, now=clock.now() + grace - 5)
    assert svc.jobs.state_of(job_id) is S.SUBMIT_UNKNOWN
    report = steps.tick(svc, now=clock.now() + grace + 1)
    assert report.counts.get("unknown") == 1
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert sent(sent_tasks, enqueue.SUBMIT) == [job_id]
    reasons = [e.get("reason", "") for e in svc.jobs.timeline(job_id)]
    assert "no callback within the grace period: resubmitting" in reasons


def test_a_callback_during_the_grace_binds_the_request_and_nothing_is_resent(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    make_unknown(svc, job_id)
    body = {"request_id": "pixverse_late", "status": "QUEUED"}
    applied = apply_upstream(svc, job_id, body, "callback", 300)
    assert applied.moved and applied.state is S.SUBMITTED
    assert svc.jobs.get_raw(job_id)["request_id"] == "pixverse_late"
    assert svc.jobs.job_for_request("pixverse_late") == job_id
    steps.tick(svc, now=clock.now() + svc.settings.unknown_grace_seconds + 1)
    assert sent(sent_tasks, enqueue.SUBMIT) == []
    assert svc.pixazo.calls == 1


def test_unknown_with_no_attempts_left_fails_after_the_grace(
    svc, job_factory, settings, sent_tasks
) -> None:
    svc.settings = settings.with_overrides(submit_retry_schedule=(1,))
    job_id = job_factory()
    make_unknown(svc, job_id)
    steps.tick(svc, now=clock.now() + svc.settings.unknown_grace_seconds + 1)
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_unavailable"
    assert len(set(sent(sent_tasks, enqueue.DELIVER))) == 1  # one event (maybe sent twice)
    assert sent(sent_tasks, enqueue.SUBMIT) == []


def test_deadline_fails_with_timeout_and_one_event(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    now = clock.now() + svc.settings.job_deadline_seconds + 1
    steps.tick(svc, now=now)
    steps.tick(svc, now=now + 1)
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "timeout"
    assert len(set(sent(sent_tasks, enqueue.DELIVER))) == 1  # one event (maybe sent twice)


def test_deadline_while_paused_fails_with_insufficient_balance(svc, job_factory) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "insufficient_balance", by="test")
    steps.tick(svc, now=clock.now() + svc.settings.job_deadline_seconds + 1)
    assert svc.jobs.get(job_id)["error"]["code"] == "insufficient_balance"


def test_paused_submits_send_one_probe_per_interval(svc, job_factory, sent_tasks) -> None:
    jobs = [job_factory() for _ in range(5)]
    pause.pause(svc.redis, "insufficient_balance", by="test")
    later = clock.now() + 120
    steps.tick(svc, now=later)
    steps.tick(svc, now=later + 0.1)
    probes = sent(sent_tasks, enqueue.SUBMIT)
    assert len(probes) == 1 and probes[0] in jobs
    assert all(svc.jobs.state_of(j) is S.QUEUED for j in jobs)


def test_an_operators_pause_sends_no_probe(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "maintenance", by="ops")
    steps.tick(svc, now=clock.now() + 120)
    assert sent(sent_tasks, enqueue.SUBMIT) == []
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert svc.redis.zscore(keys.DUE_SUBMIT, job_id) > clock.now() + 120


def test_each_drain_reads_one_bounded_batch(svc, client_factory, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(reconcile_batch_size=7)
    now = clock.now()
    svc.redis.zadd(keys.DUE_POLL, {f"job_{i}": now - 1 for i in range(20)})
    report = steps.tick(svc, now=now)
    assert report.counts.get("polls") == 7
    assert len(sent(sent_tasks, enqueue.POLL)) == 7
    # the handed-out members were pushed into the future: a lost task comes due again later
    assert svc.redis.zcount(keys.DUE_POLL, "-inf", now) == 13
    assert svc.redis.zcount(keys.DUE_POLL, now + steps.CLAIM_SECONDS - 1, "+inf") == 7


def test_nothing_due_touches_nothing(svc, job_factory, sent_tasks) -> None:
    for _ in range(3):
        job_factory()
    report = steps.tick(svc)
    assert report.counts == {}
    assert sent_tasks == []


def test_tick_lock_has_the_configured_timeout(svc, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(
        steps,
        "STEPS",
        (("probe", lambda s, now, batch: seen.append(s.redis.pttl(steps.LOCK_KEY)) or 0),),
    )
    assert steps.tick(svc) is not None
    expected_ms = max(svc.settings.reconcile_interval_seconds * 4, 10) * 1000
    assert expected_ms - 1000 < seen[0] <= expected_ms


def test_a_tick_that_outlived_its_lock_leaves_the_new_holders_lock(svc, monkeypatch) -> None:
    """The release is atomic by token: a lock another tick took meanwhile is not deleted."""

    def taken_over(s, now, batch) -> int:
        s.redis.set(steps.LOCK_KEY, "other", px=10_000)
        return 0

    monkeypatch.setattr(steps, "STEPS", (("taken", taken_over),))
    assert steps.tick(svc) is not None
    assert svc.redis.get(steps.LOCK_KEY) == "other"
