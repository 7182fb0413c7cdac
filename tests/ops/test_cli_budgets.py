"""``orchestrator clients update ID --monthly-budget-usd N | --no-budget | --unpriced P``: what it
stores, what it prints, and the usage errors (exit 2) that change nothing."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ops.cli import base, cli
from orchestrator.core import budgets, keys


@pytest.fixture
def run(app, monkeypatch):
    """The CLI over the unit tests' app (fakeredis)."""
    monkeypatch.setattr(base, "create_app", lambda: app)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["clients", "update", *args], catch_exceptions=False)

    return invoke


@pytest.fixture
def acme(client_factory):
    return client_factory("acme")[0]


def test_set_and_remove_a_monthly_budget(svc, run, acme) -> None:
    result = run(acme.id, "--monthly-budget-usd", "500", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["budget"]["monthly_budget_usd"] == 500.0
    assert printed["budget"]["period"] == budgets.period_of().name
    assert svc.clients.get(acme.id).monthly_budget_usd == 500.0
    assert run(acme.id, "--monthly-budget-usd", "0.65").exit_code == 0
    assert svc.clients.get(acme.id).budget_micros == 650_000
    assert run(acme.id, "--no-budget").exit_code == 0
    assert svc.clients.get(acme.id).budget_micros is None


def test_the_unpriced_policy(svc, run, acme) -> None:
    assert run(acme.id, "--unpriced", "refuse").exit_code == 0
    assert svc.clients.get(acme.id).unpriced == "refuse"
    assert run(acme.id, "--unpriced", "allow").exit_code == 0
    assert svc.clients.get(acme.id).unpriced == "allow"
    assert run(acme.id, "--unpriced", "maybe").exit_code == 2


@pytest.mark.parametrize("amount", ["-1", "nan", "inf", "-inf", "abc", "1e12"])
def test_a_bad_amount_is_a_usage_error_and_changes_nothing(svc, run, acme, amount) -> None:
    result = run(acme.id, "--monthly-budget-usd", amount)
    assert result.exit_code == 2, result.output
    assert "--monthly-budget-usd" in result.output
    assert svc.clients.get(acme.id).budget_micros is None


def test_a_budget_and_no_budget_at_once_is_a_usage_error(svc, run, acme) -> None:
    result = run(acme.id, "--monthly-budget-usd", "5", "--no-budget")
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert svc.clients.get(acme.id).budget_micros is None


def test_an_unknown_client_is_exit_3_not_found(run) -> None:
    result = run("cli_nobody", "--monthly-budget-usd", "5")
    assert result.exit_code == 3 and "no client" in result.output.lower()


def test_lowering_the_budget_under_committed_spend_warns_once(svc, run, acme, monkeypatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(budgets.sentry_sdk, "capture_message", lambda m, **kw: sent.append(m))
    svc.redis.set(keys.budget_committed(acme.id, budgets.period_of().name), 900_000)
    run(acme.id, "--monthly-budget-usd", "1")
    run(acme.id, "--monthly-budget-usd", "1")
    assert len(sent) == 1


def test_every_budget_option_has_help(run) -> None:
    text = CliRunner().invoke(cli, ["clients", "update", "--help"]).output
    for option in ("--monthly-budget-usd", "--no-budget", "--unpriced"):
        line = next(part for part in text.split("\n  ") if part.strip().startswith(option))
        assert len(line.split()) > 2, line
