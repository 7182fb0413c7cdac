"""Reconcile over fakeredis: what each due set's batch does, bounded atomic claims, the tick's
fan-out and its lock."""

from __future__ import annotations

import pytest

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.due import DueSet
from orchestrator.jobs.state import JobState
from orchestrator.reconcile import steps
from orchestrator.services import Services
from orchestrator.upstream import pause, submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from orchestrator.upstream.statuses import apply_upstream
from tests.helpers import reconcile_pass

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


def test_tick_is_skipped_while_another_holds_the_lock(svc, sent_tasks) -> None:
    svc.redis.zadd(keys.DUE_POLL, {"job_a": clock.now() - 1})
    svc.redis.set(steps.LOCK_KEY, "other", px=10_000)
    assert steps.fan_out(svc) is None
    assert svc.redis.get(steps.LOCK_KEY) == "other"
    assert sent_tasks == []


def test_tick_releases_its_lock(svc) -> None:
    assert steps.fan_out(svc) is not None
    assert svc.redis.get(steps.LOCK_KEY) is None


def test_submitting_past_its_time_becomes_unknown_not_resent(svc, job_factory, sent_tasks):
    """A worker killed between send and record leaves the job in submitting."""
    job_id = job_factory()
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING, due_at=clock.now() + 10)
    reconcile_pass(svc, now=clock.now() + 5)
    assert svc.jobs.state_of(job_id) is S.SUBMITTING
    report = reconcile_pass(svc, now=clock.now() + 11)
    assert report.counts.get("submitting") == 1
    assert svc.jobs.state_of(job_id) is S.SUBMIT_UNKNOWN
    assert job_id not in sent(sent_tasks, enqueue.SUBMIT)


def test_unknown_is_resubmitted_only_after_the_grace_and_says_why(
    svc, job_factory, sent_tasks
) -> None:
    job_id = job_factory()
    make_unknown(svc, job_id)
    grace = svc.settings.unknown_grace_seconds
    reconcile_pass(svc, now=clock.now() + grace - 5)
    assert svc.jobs.state_of(job_id) is S.SUBMIT_UNKNOWN
    report = reconcile_pass(svc, now=clock.now() + grace + 1)
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
    reconcile_pass(svc, now=clock.now() + svc.settings.unknown_grace_seconds + 1)
    assert sent(sent_tasks, enqueue.SUBMIT) == []
    assert svc.pixazo.calls == 1


def test_unknown_with_no_attempts_left_fails_after_the_grace(
    svc, job_factory, settings, sent_tasks
) -> None:
    svc.settings = settings.with_overrides(submit_retry_schedule=(1,))
    job_id = job_factory()
    make_unknown(svc, job_id)
    reconcile_pass(svc, now=clock.now() + svc.settings.unknown_grace_seconds + 1)
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_unavailable"
    assert len(set(sent(sent_tasks, enqueue.DELIVER))) == 1  # one event (maybe sent twice)
    assert sent(sent_tasks, enqueue.SUBMIT) == []


def test_deadline_fails_with_timeout_and_one_event(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    now = clock.now() + svc.settings.job_deadline_seconds + 1
    reconcile_pass(svc, now=now)
    reconcile_pass(svc, now=now + 1)
    job = svc.jobs.get(job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "timeout"
    assert len(set(sent(sent_tasks, enqueue.DELIVER))) == 1  # one event (maybe sent twice)


def test_deadline_while_paused_fails_with_insufficient_balance(svc, job_factory) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "insufficient_balance", by="test")
    reconcile_pass(svc, now=clock.now() + svc.settings.job_deadline_seconds + 1)
    assert svc.jobs.get(job_id)["error"]["code"] == "insufficient_balance"


def test_paused_submits_send_one_probe_per_interval(svc, job_factory, sent_tasks) -> None:
    jobs = [job_factory() for _ in range(5)]
    pause.pause(svc.redis, "insufficient_balance", by="test")
    later = clock.now() + 120
    reconcile_pass(svc, now=later)
    reconcile_pass(svc, now=later + 0.1)
    probes = sent(sent_tasks, enqueue.SUBMIT)
    assert len(probes) == 1 and probes[0] in jobs
    assert all(svc.jobs.state_of(j) is S.QUEUED for j in jobs)


def test_an_operators_pause_sends_no_probe(svc, job_factory, sent_tasks) -> None:
    job_id = job_factory()
    pause.pause(svc.redis, "maintenance", by="ops")
    reconcile_pass(svc, now=clock.now() + 120)
    assert sent(sent_tasks, enqueue.SUBMIT) == []
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert svc.redis.zscore(keys.DUE_SUBMIT, job_id) > clock.now() + 120


def test_each_drain_reads_one_bounded_batch(svc, client_factory, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(reconcile_batch_size=7)
    now = clock.now()
    svc.redis.zadd(keys.DUE_POLL, {f"job_{i}": now - 1 for i in range(20)})
    report = reconcile_pass(svc, now=now)
    assert report.counts.get("polls") == 7
    assert len(sent(sent_tasks, enqueue.POLL)) == 7
    # the handed-out members were pushed into the future: a lost task comes due again later
    assert svc.redis.zcount(keys.DUE_POLL, "-inf", now) == 13
    assert svc.redis.zcount(keys.DUE_POLL, now + steps.CLAIM_SECONDS - 1, "+inf") == 7


def test_nothing_due_touches_nothing(svc, job_factory, sent_tasks) -> None:
    for _ in range(3):
        job_factory()
    report = reconcile_pass(svc)
    assert report.counts == {}
    assert steps.fan_out(svc).counts == {}
    assert sent_tasks == []


def test_tick_lock_has_the_configured_timeout(svc, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(
        DueSet, "count_due", lambda self, now: seen.append(self.redis.pttl(steps.LOCK_KEY)) or 0
    )
    assert steps.fan_out(svc) is not None
    expected_ms = max(svc.settings.reconcile_interval_seconds * 4, 10) * 1000
    assert expected_ms - 1000 < seen[0] <= expected_ms


def test_a_tick_that_outlived_its_lock_leaves_the_new_holders_lock(svc, monkeypatch) -> None:
    """The release is atomic by token: a lock another tick took meanwhile is not deleted."""

    def taken_over(self: DueSet, now: float) -> int:
        self.redis.set(steps.LOCK_KEY, "other", px=10_000)
        return 0

    monkeypatch.setattr(DueSet, "count_due", taken_over)
    assert steps.fan_out(svc) is not None
    assert svc.redis.get(steps.LOCK_KEY) == "other"


# ----------------------------------------------------------------------------- fan-out, batches


def test_the_tick_fans_out_enough_batches_for_each_due_set(svc, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(reconcile_batch_size=10)
    now = clock.now()
    svc.redis.zadd(keys.DUE_POLL, {f"job_p{i}": now - 1 for i in range(25)})
    svc.redis.zadd(keys.DUE_POLL, {f"job_later{i}": now + 60 for i in range(50)})
    svc.redis.zadd(keys.DUE_DELIVERY, {"evt_a": now - 5})
    report = steps.fan_out(svc, now=now)
    assert report.counts == {"polls": 3, "deliveries": 1}
    assert sent(sent_tasks, enqueue.RECONCILE_BATCH) == ["polls"] * 3 + ["deliveries"]
    assert [name for name, _ in sent_tasks] == [enqueue.RECONCILE_BATCH] * 4  # nothing else
    assert svc.redis.zcount(keys.DUE_POLL, "-inf", now) == 25  # the tick claims nothing itself


def test_a_backlog_fans_out_a_bounded_number_of_batches(svc, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(reconcile_batch_size=1)
    now = clock.now()
    backlog = steps.MAX_BATCHES_PER_SET + 40
    svc.redis.zadd(keys.DUE_CALLBACK, {f"inb_{i}": now - 1 for i in range(backlog)})
    assert steps.fan_out(svc, now=now).counts == {"callbacks": steps.MAX_BATCHES_PER_SET}


def test_batches_of_one_set_never_hand_out_a_member_twice(svc, settings, sent_tasks) -> None:
    svc.settings = settings.with_overrides(reconcile_batch_size=8)
    now = clock.now()
    svc.redis.zadd(keys.DUE_POLL, {f"job_{i}": now - i for i in range(30)})
    handled = [steps.run_batch(svc, "polls", now) for _ in range(5)]
    assert handled == [8, 8, 8, 6, 0]
    polls = sent(sent_tasks, enqueue.POLL)
    assert len(polls) == len(set(polls)) == 30
    # each member is leased: due again only once the lease lapses (a lost poll task)
    assert steps.run_batch(svc, "polls", now + steps.LEASE_SECONDS - 1) == 0
    assert steps.run_batch(svc, "polls", now + steps.LEASE_SECONDS) == 8


def test_members_of_a_batch_that_died_come_due_after_the_lease(
    svc, job_factory, monkeypatch
) -> None:
    job_id = job_factory()
    past_deadline = clock.now() + svc.settings.job_deadline_seconds + 1

    def dies(*args: object) -> int:
        raise RuntimeError("worker killed mid-batch")

    step = steps.STEPS_BY_NAME["deadline"]
    monkeypatch.setitem(steps.STEPS_BY_NAME, "deadline", steps.Step(step.name, step.key, dies))
    with pytest.raises(RuntimeError):
        steps.run_batch(svc, "deadline", past_deadline)
    monkeypatch.setitem(steps.STEPS_BY_NAME, "deadline", step)
    assert steps.run_batch(svc, "deadline", past_deadline + 1) == 0  # leased, not due
    assert svc.jobs.state_of(job_id) is S.QUEUED
    assert steps.run_batch(svc, "deadline", past_deadline + steps.LEASE_SECONDS) == 1
    assert svc.jobs.state_of(job_id) is S.FAILED


def test_a_deadline_that_raced_a_move_is_due_again_at_once(svc, job_factory, monkeypatch) -> None:
    """The job moved between the batch's read of its state and its transition: it stays due
    at once (as it did before batches), not only when the claim's lease lapses."""
    job_id = job_factory()
    now = clock.now() + svc.settings.job_deadline_seconds + 1
    real_state_of = svc.jobs.state_of

    def stale_state(jid: str) -> JobState | None:
        seen = real_state_of(jid)
        svc.states.transition(jid, expected=[S.QUEUED], to=S.SUBMITTING, due_at=now + 30)
        return seen

    monkeypatch.setattr(svc.jobs, "state_of", stale_state)
    assert steps.run_batch(svc, "deadline", now) == 0
    monkeypatch.undo()
    assert svc.redis.zscore(keys.DUE_DEADLINE, job_id) == now
    assert steps.run_batch(svc, "deadline", now) == 1
    assert svc.jobs.state_of(job_id) is S.FAILED


def test_an_unknown_batch_name_is_an_error_not_a_silent_no_op(svc) -> None:
    with pytest.raises(KeyError):
        steps.run_batch(svc, "nope")


def test_a_batch_is_ended_before_its_lease_lapses_and_a_stale_one_is_dropped() -> None:
    assert enqueue.RECONCILE_BATCH_SOFT_TIME_LIMIT_SECONDS < steps.LEASE_SECONDS
    assert enqueue.RECONCILE_BATCH_TIME_LIMIT_SECONDS < steps.LEASE_SECONDS
    assert enqueue.SEND_OPTIONS[enqueue.RECONCILE_BATCH]["expires"] < steps.LEASE_SECONDS
    assert enqueue.ROUTES[enqueue.RECONCILE_BATCH]["queue"] == enqueue.QUEUE_RECONCILE
    assert set(steps.STEPS_BY_NAME) == {step.name for step in steps.STEPS}
    assert {step.key for step in steps.STEPS} == set(keys.DUE_SETS)
