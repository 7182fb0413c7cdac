"""Budgets, the domain part: months (UTC), amounts in micro-dollars, the commit at intake and the
80% warning (fakeredis with real Lua; a controllable clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orchestrator.core import budgets, clock, keys, lua
from orchestrator.core.budgets import UnpricedPolicy
from orchestrator.jobs.store import NewJob
from tests.orchestrator.script_keys import KeysSpy, changed, snapshot

JOB_USD = 0.65  # pixverse 720p 5 s
JOB_MICROS = 650_000
# Months far ahead: fakeredis expires keys by the real clock, and a counter expires some months
# after its month ends.


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def new_job(client_id: str, cost: float | None = JOB_USD) -> NewJob:
    return NewJob(client_id, "pixverse", {"prompt": "x"}, {}, None, cost, "terminal")


@pytest.mark.parametrize(
    ("moment", "name", "start", "end"),
    [
        (ts(2099, 1, 31, 23, 59, 59), "2099-01", ts(2099, 1, 1), ts(2099, 2, 1)),
        (ts(2099, 2, 1), "2099-02", ts(2099, 2, 1), ts(2099, 3, 1)),
        (ts(2099, 12, 15), "2099-12", ts(2099, 12, 1), ts(2100, 1, 1)),
    ],
)
def test_a_period_is_the_calendar_month_in_utc(moment, name, start, end) -> None:
    period = budgets.period_of(moment)
    assert period.name == name
    assert period.start.timestamp() == start and period.end.timestamp() == end
    # the counter outlives its month by KEEP_MONTHS months
    assert datetime.fromtimestamp(period.expire_at, UTC).day == 1
    assert period.expire_at > end + (budgets.KEEP_MONTHS - 1) * 31 * 86400


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf", "abc", "", "1e12"])
def test_a_budget_must_be_a_finite_amount_of_at_least_zero(value) -> None:
    with pytest.raises(budgets.BudgetValueError):
        budgets.parse_usd(value)


def test_amounts_are_exact_micro_dollars() -> None:
    assert budgets.parse_usd("500") == Decimal(500)
    assert budgets.to_micros(0.1) * 3 == budgets.to_micros(0.3)
    assert budgets.to_micros(Decimal("0.0001")) == 100
    assert sum(budgets.to_micros(0.65) for _ in range(1000)) == 650_000_000


def test_intake_commits_the_estimate_into_the_month_of_the_job(svc, client_factory) -> None:
    client, _ = client_factory()
    moment = ts(2099, 3, 10)
    result = svc.jobs.create(new_job(client.id), now=moment)
    assert result.created and result.committed_micros == JOB_MICROS
    raw = svc.jobs.get_raw(result.job_id)
    assert raw[budgets.JOB_PERIOD] == "2099-03" and raw[budgets.JOB_MICROS] == str(JOB_MICROS)
    assert raw[budgets.JOB_STATE] == budgets.COMMITTED
    counter = keys.budget_committed(client.id, "2099-03")
    assert svc.redis.get(counter) == str(JOB_MICROS)
    assert svc.redis.ttl(counter) > 0  # it expires some months after the month


def test_the_budget_refuses_what_would_go_over_and_stores_nothing(svc, client_factory) -> None:
    client, _ = client_factory()
    svc.clients.update(client.id, monthly_budget_usd=Decimal("1.30"))
    moment = ts(2099, 3, 10)
    assert svc.jobs.create(new_job(client.id), now=moment).created
    assert svc.jobs.create(new_job(client.id), now=moment).created  # exactly at the budget
    before = snapshot(svc.redis)
    result = svc.jobs.create(new_job(client.id), idempotency_key="k", now=moment)
    assert not result.created and result.refused is not None
    assert result.refused.details() == {
        "budget_usd": 1.3,
        "committed_usd": 1.3,
        "job_usd": JOB_USD,
    }
    assert changed(before, snapshot(svc.redis)) == set()  # not even the idempotency key


def test_a_new_month_starts_from_zero(svc, client_factory) -> None:
    client, _ = client_factory()
    svc.clients.update(client.id, monthly_budget_usd=Decimal("0.65"))
    assert svc.jobs.create(new_job(client.id), now=ts(2099, 3, 31, 23, 59)).created
    assert svc.jobs.create(new_job(client.id), now=ts(2099, 3, 31, 23, 59, 30)).refused
    assert svc.jobs.create(new_job(client.id), now=ts(2099, 4, 1)).created


def test_unpriced_jobs_count_as_zero_or_are_refused_by_policy(svc, client_factory) -> None:
    client, _ = client_factory()
    svc.clients.update(client.id, monthly_budget_usd=Decimal("0"))
    allowed = svc.jobs.create(new_job(client.id, cost=None))
    assert allowed.created and allowed.committed_micros == 0
    assert svc.jobs.get_raw(allowed.job_id)[budgets.JOB_MICROS] == "0"
    svc.clients.update(client.id, unpriced=UnpricedPolicy.REFUSE)
    refused = svc.jobs.create(new_job(client.id, cost=None)).refused
    assert refused is not None and refused.details()["job_usd"] is None
    assert "no published price" in refused.message()
    # with no budget at all, the policy still refuses unpriced jobs
    svc.clients.update(client.id, no_budget=True)
    assert svc.jobs.create(new_job(client.id, cost=None)).refused is not None


def test_an_idempotent_replay_commits_nothing(svc, client_factory) -> None:
    client, _ = client_factory()
    first = svc.jobs.create(new_job(client.id), idempotency_key="k", fingerprint="f")
    again = svc.jobs.create(new_job(client.id), idempotency_key="k", fingerprint="f")
    assert first.created and not again.created and again.job_id == first.job_id
    assert budgets.committed_micros(svc.redis, client.id) == JOB_MICROS


def test_the_commit_touches_only_the_keys_it_passes(svc, client_factory, monkeypatch) -> None:
    client, _ = client_factory()
    svc.clients.update(client.id, monthly_budget_usd=Decimal(5))
    spy = KeysSpy(svc.jobs._create)
    monkeypatch.setattr(svc.jobs, "_create", spy)
    before = snapshot(svc.redis)
    svc.jobs.create(new_job(client.id), idempotency_key="k")
    touched = changed(before, snapshot(svc.redis))
    assert keys.budget_committed(client.id, budgets.period_of().name) in touched
    assert touched <= set(spy.keys), touched - set(spy.keys)


def test_the_80_percent_warning_goes_to_sentry_once_per_client_and_month(
    svc, client_factory, monkeypatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(budgets.sentry_sdk, "capture_message", lambda m, **kw: sent.append(m))
    client, _ = client_factory()
    march, april = budgets.period_of(ts(2099, 3, 2)), budgets.period_of(ts(2099, 4, 2))
    assert not budgets.warn_if_near(svc.redis, client.id, 1_000_000, 799_999, march)
    assert not budgets.warn_if_near(svc.redis, client.id, None, 10**9, march)
    assert budgets.warn_if_near(svc.redis, client.id, 1_000_000, 800_000, march)
    assert not budgets.warn_if_near(svc.redis, client.id, 1_000_000, 950_000, march)
    assert budgets.warn_if_near(svc.redis, client.id, 1_000_000, 900_000, april)
    assert len(sent) == 2 and client.id in sent[0] and "2099-03" in sent[0]


def test_committed_by_client_reads_this_month_for_every_client(
    svc, client_factory, monkeypatch
) -> None:
    monkeypatch.setattr(clock, "now", lambda: ts(2099, 5, 5))
    a, _ = client_factory("a")
    b, _ = client_factory("b")
    svc.jobs.create(new_job(a.id))
    svc.jobs.create(new_job(a.id))
    svc.jobs.create(new_job(b.id), now=ts(2099, 4, 30))  # last month: not this month's
    assert budgets.committed_by_client(svc) == {a.id: 1.3, b.id: 0.0}


def test_status_is_what_get_v1_client_shows(svc, client_factory, monkeypatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: ts(2099, 2, 14, 12))
    client, _ = client_factory()
    svc.clients.update(client.id, monthly_budget_usd=Decimal("12.5"))
    svc.jobs.create(new_job(client.id))
    assert budgets.status(svc.redis, client.id) == {
        "monthly_budget_usd": 12.5,
        "committed_usd": JOB_USD,
        "period": "2099-02",
        "period_start": "2099-02-01T00:00:00.000Z",
        "period_end": "2099-03-01T00:00:00.000Z",
        "unpriced": "allow",
    }


def test_client_records_carry_the_budget_and_the_policy(svc, client_factory) -> None:
    client, _ = client_factory()
    assert client.budget_micros is None and client.unpriced is UnpricedPolicy.ALLOW
    updated = svc.clients.update(
        client.id, monthly_budget_usd=Decimal("500"), unpriced=UnpricedPolicy.REFUSE
    )
    assert updated is not None and updated.monthly_budget_usd == 500.0
    assert updated.unpriced is UnpricedPolicy.REFUSE
    cleared = svc.clients.update(client.id, no_budget=True)
    assert cleared is not None and cleared.budget_micros is None
    with pytest.raises(budgets.BudgetValueError):
        svc.clients.update(client.id, monthly_budget_usd=Decimal("-1"))
    with pytest.raises(ValueError, match="no budget"):
        svc.clients.update(client.id, monthly_budget_usd=Decimal(1), no_budget=True)


def test_create_job_lua_reads_the_client_fields_budgets_names() -> None:
    text = lua.source("create_job")
    for name in (budgets.CLIENT_BUDGET, budgets.CLIENT_UNPRICED, UnpricedPolicy.REFUSE.value):
        assert f"'{name}'" in text
