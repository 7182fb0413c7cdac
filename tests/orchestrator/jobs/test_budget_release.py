"""Budgets, the release: a job that ends without Pixazo having charged it gives its cost back,
once, to the month it committed in; an operator's retry commits it again. Driven through the
product's own paths (cancel, the submit task, callbacks, the deadline, retry) on fakeredis with
a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orchestrator.core import budgets, clock, keys
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.reconcile import steps
from orchestrator.upstream import submission
from orchestrator.upstream.pixazo import Outcome, SubmitResult
from orchestrator.upstream.statuses import apply_upstream
from tests.orchestrator.script_keys import KeysSpy, changed, snapshot
from tests.orchestrator.upstream.test_submission import ScriptedPixazo, accepted

S = JobState
MICROS = 650_000  # pixverse 720p 5 s: 0.65 USD
# Months far ahead: fakeredis expires keys by the real clock.
JAN_31_LATE = datetime(2099, 1, 31, 23, 59, tzinfo=UTC).timestamp()
FEB_1 = datetime(2099, 2, 1, 0, 0, 30, tzinfo=UTC).timestamp()
MID_JAN = datetime(2099, 1, 15, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def now(monkeypatch) -> Clock:
    moment = Clock(MID_JAN)
    monkeypatch.setattr(clock, "now", moment)
    return moment


@pytest.fixture
def client(client_factory):
    return client_factory("acme")[0]


def create(svc, client_id: str) -> str:
    new = NewJob(client_id, "pixverse", {"prompt": "x"}, {}, None, 0.65, "terminal")
    result = svc.jobs.create(new)
    assert result.created
    return result.job_id


def committed(svc, client_id: str, period: str) -> int:
    return int(svc.redis.get(keys.budget_committed(client_id, period)) or 0)


def budget_state(svc, job_id: str) -> str:
    return svc.jobs.get_raw(job_id)[budgets.JOB_STATE]


def upstream(svc, job_id: str, status: str, request_id: str = "pixverse_r1") -> None:
    body = {"request_id": request_id, "status": status, "output": None, "error": None}
    apply_upstream(svc, job_id, body, "callback", 300)


def submit_accepted(svc, job_id: str, request_id: str = "pixverse_r1") -> None:
    svc.pixazo = ScriptedPixazo(accepted(request_id))
    assert submission.submit(svc, job_id) == "submitted"


def test_cancel_before_any_submit_releases(svc, sent_tasks, now, client) -> None:
    job_id = create(svc, client.id)
    assert committed(svc, client.id, "2099-01") == MICROS
    assert actions.cancel(svc, job_id, "op").ok
    assert committed(svc, client.id, "2099-01") == 0
    assert budget_state(svc, job_id) == budgets.RELEASED
    entry = next(e for e in svc.jobs.timeline(job_id) if e.get("to") == "canceled")
    assert entry["budget"] == "released"


def test_cancel_mid_submit_keeps_the_cost(svc, sent_tasks, now, client) -> None:
    job_id = create(svc, client.id)
    assert svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTING).applied
    assert actions.cancel(svc, job_id, "op").ok  # Pixazo may have it: charge_risk
    assert committed(svc, client.id, "2099-01") == MICROS
    assert budget_state(svc, job_id) == budgets.COMMITTED


def test_a_submit_pixazo_refused_releases(svc, sent_tasks, now, client) -> None:
    job_id = create(svc, client.id)
    svc.pixazo = ScriptedPixazo(SubmitResult(Outcome.REJECTED, http_status=400, message="bad"))
    submission.submit(svc, job_id)
    assert svc.jobs.state_of(job_id) is S.FAILED
    assert committed(svc, client.id, "2099-01") == 0


def test_the_deadline_of_a_job_never_sent_releases(svc, sent_tasks, now, client) -> None:
    job_id = create(svc, client.id)
    sent = create(svc, client.id)
    submit_accepted(svc, sent)
    now.value += svc.settings.job_deadline_seconds + 1
    assert steps.run_batch(svc, "deadline", now.value) == 2
    assert budget_state(svc, job_id) == budgets.RELEASED
    assert budget_state(svc, sent) == budgets.COMMITTED  # accepted: Pixazo charged it
    assert committed(svc, client.id, "2099-01") == MICROS


@pytest.mark.parametrize(
    ("status", "released"), [("ERROR", True), ("FAILED", False), ("COMPLETED", False)]
)
def test_only_upstream_error_releases_an_accepted_job(
    svc, sent_tasks, now, client, status, released
) -> None:
    job_id = create(svc, client.id)
    submit_accepted(svc, job_id)
    upstream(svc, job_id, status)
    assert svc.jobs.state_of(job_id) in (S.FAILED, S.COMPLETED)
    assert committed(svc, client.id, "2099-01") == (0 if released else MICROS)


def test_a_redelivered_release_releases_once(svc, sent_tasks, now, client) -> None:
    other = create(svc, client.id)
    job_id = create(svc, client.id)
    submit_accepted(svc, job_id)
    for _ in range(3):  # the callback task run again (at-least-once), and a poll's answer
        upstream(svc, job_id, "ERROR")
    assert not actions.cancel(svc, job_id, "op").ok
    assert committed(svc, client.id, "2099-01") == MICROS  # only `other` is left
    assert budget_state(svc, other) == budgets.COMMITTED


def test_month_rollover_releases_into_the_month_of_the_commit(svc, sent_tasks, now, client) -> None:
    now.value = JAN_31_LATE
    january = create(svc, client.id)
    now.value = FEB_1
    february = create(svc, client.id)
    assert committed(svc, client.id, "2099-01") == MICROS
    assert committed(svc, client.id, "2099-02") == MICROS
    assert actions.cancel(svc, january, "op").ok  # canceled in February
    assert committed(svc, client.id, "2099-01") == 0
    assert committed(svc, client.id, "2099-02") == MICROS
    assert budget_state(svc, february) == budgets.COMMITTED


def test_a_retry_commits_again_even_over_the_budget(svc, sent_tasks, now, client) -> None:
    svc.clients.update(client.id, monthly_budget_usd=Decimal("0.65"))
    job_id = create(svc, client.id)
    submit_accepted(svc, job_id)
    upstream(svc, job_id, "FAILED")  # charged: kept
    assert committed(svc, client.id, "2099-01") == MICROS
    assert actions.retry(svc, job_id, "op", confirm_charge=True).ok
    assert committed(svc, client.id, "2099-01") == 2 * MICROS  # the operator may go over
    retry_entry = next(e for e in svc.jobs.timeline(job_id) if e.get("reason") == "operator retry")
    assert retry_entry["over_budget"] is True and retry_entry["budget"] == "committed"
    assert budget_state(svc, job_id) == budgets.COMMITTED
    # the new generation releases its own commit when it ends uncharged
    submit_accepted(svc, job_id, "pixverse_r2")
    upstream(svc, job_id, "ERROR", "pixverse_r2")
    assert committed(svc, client.id, "2099-01") == MICROS


def test_a_retry_in_a_new_month_commits_and_releases_there(svc, sent_tasks, now, client) -> None:
    now.value = JAN_31_LATE
    job_id = create(svc, client.id)
    svc.pixazo = ScriptedPixazo(SubmitResult(Outcome.REJECTED, http_status=400, message="bad"))
    submission.submit(svc, job_id)
    assert committed(svc, client.id, "2099-01") == 0  # released: never charged
    now.value = FEB_1
    assert actions.retry(svc, job_id, "op").ok
    assert svc.jobs.get_raw(job_id)[budgets.JOB_PERIOD] == "2099-02"
    assert committed(svc, client.id, "2099-02") == MICROS
    assert actions.cancel(svc, job_id, "op").ok
    assert committed(svc, client.id, "2099-02") == 0
    assert committed(svc, client.id, "2099-01") == 0


def test_a_stale_month_read_is_read_again(svc, sent_tasks, now, client, monkeypatch) -> None:
    """The month a release subtracts from is read before the script; the script checks it and
    asks for a fresh read when it changed (an operator's retry in between)."""
    job_id = create(svc, client.id)
    real = svc.states._budget_step
    calls: list[int] = []

    def stale_first(*args):
        calls.append(1)
        counter, arg = real(*args)
        if len(calls) == 1:
            return [keys.budget_committed(client.id, "2098-12")], '{"period": "2098-12"}'
        return counter, arg

    monkeypatch.setattr(svc.states, "_budget_step", stale_first)
    assert actions.cancel(svc, job_id, "op").ok
    assert len(calls) == 2
    assert committed(svc, client.id, "2099-01") == 0
    assert not svc.redis.exists(keys.budget_committed(client.id, "2098-12"))


def test_a_release_touches_only_the_keys_it_passes(
    svc, sent_tasks, now, client, monkeypatch
) -> None:
    job_id = create(svc, client.id)
    spy = KeysSpy(svc.states._script)
    monkeypatch.setattr(svc.states, "_script", spy)
    before = snapshot(svc.redis)
    assert actions.cancel(svc, job_id, "op").ok
    touched = changed(before, snapshot(svc.redis))
    assert keys.budget_committed(client.id, "2099-01") in touched
    assert touched - {keys.AUDIT} <= set(spy.keys), touched - set(spy.keys)
