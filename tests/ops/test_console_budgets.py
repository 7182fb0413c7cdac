"""The console's client views: spend against budget per client, the 80% warning, and the budget
form (sign-in, CSRF, confirmation, validation, audit log)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orchestrator.core import budgets, keys


def commit(svc, client_id: str, usd: str) -> None:
    key = keys.budget_committed(client_id, budgets.period_of().name)
    svc.redis.set(key, budgets.to_micros(Decimal(usd)))


@pytest.fixture
def acme(svc, client_factory):
    return client_factory("acme")[0]


def test_the_client_views_need_a_signed_in_operator(app, acme) -> None:
    anonymous = app.test_client()
    for path in ("/ops/clients", f"/ops/clients/{acme.id}"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and "/ops/login" in answer.headers["Location"]


def test_the_list_shows_spend_against_budget_and_warns_from_80_percent(
    browser, svc, client_factory
) -> None:
    calm, _ = client_factory("calm")
    near, _ = client_factory("near")
    free, _ = client_factory("free")
    svc.clients.update(calm.id, monthly_budget_usd=Decimal(100))
    svc.clients.update(near.id, monthly_budget_usd=Decimal(10))
    commit(svc, calm.id, "79.99")
    commit(svc, near.id, "8.00")
    commit(svc, free.id, "3.25")
    page = browser.get("/ops/clients").get_data(as_text=True)
    rows = {
        name: part
        for name in ("calm", "near", "free")
        for part in page.split("<tr")
        if f">{name}<" in part
    }
    assert "79.99 USD" in rows["calm"] and "100.00 USD" in rows["calm"] and "79%" in rows["calm"]
    assert "budget-warn" not in rows["calm"]  # 79.99 of 100: under the line
    assert "budget-warn" in rows["near"] and "near budget" in rows["near"]
    assert "no budget" in rows["free"] and "3.25 USD" in rows["free"]
    assert "Clients" in page and budgets.period_of().name in page


def test_the_client_page_shows_the_warning(browser, svc, acme) -> None:
    svc.clients.update(acme.id, monthly_budget_usd=Decimal(10))
    commit(svc, acme.id, "9.50")
    page = browser.get(f"/ops/clients/{acme.id}").get_data(as_text=True)
    assert "9.50 USD" in page and "95%" in page and 'role="alert"' in page


@pytest.mark.parametrize("client_id", ["cli_nobody", "job_x", "../x"])
def test_an_unknown_client_is_a_404_page(browser, client_id) -> None:
    assert browser.get(f"/ops/clients/{client_id}").status_code == 404


def test_setting_the_budget_needs_csrf_and_confirmation_and_is_audited(
    browser, svc, acme, monkeypatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(budgets.sentry_sdk, "capture_message", lambda m, **kw: sent.append(m))
    path = f"/ops/clients/{acme.id}"
    form = {"monthly_budget_usd": "500", "unpriced": "refuse", "confirm": "yes"}
    assert browser.post(path, data=form).status_code == 403  # no CSRF token
    browser.post(path, data={**form, "confirm": "", "csrf_token": browser.csrf})
    assert svc.clients.get(acme.id).budget_micros is None  # not confirmed
    answer = browser.post(path, data={**form, "csrf_token": browser.csrf})
    assert answer.status_code == 302
    client = svc.clients.get(acme.id)
    assert client.monthly_budget_usd == 500.0 and client.unpriced == "refuse"
    entry = svc.redis.lindex(keys.AUDIT, 0)
    assert '"budget"' in entry and acme.id in entry and "alice" in entry
    # lowering it under what is committed warns Sentry once for the month
    commit(svc, acme.id, "90")
    browser.post(path, data={**form, "monthly_budget_usd": "100", "csrf_token": browser.csrf})
    browser.post(path, data={**form, "monthly_budget_usd": "100", "csrf_token": browser.csrf})
    assert len(sent) == 1
    # an empty amount removes the budget
    browser.post(path, data={**form, "monthly_budget_usd": "", "csrf_token": browser.csrf})
    assert svc.clients.get(acme.id).budget_micros is None


@pytest.mark.parametrize("amount", ["-5", "nan", "inf", "ten"])
def test_a_bad_amount_changes_nothing_and_says_why(browser, svc, acme, amount) -> None:
    path = f"/ops/clients/{acme.id}"
    form = {"monthly_budget_usd": amount, "unpriced": "allow", "confirm": "yes"}
    answer = browser.post(path, data={**form, "csrf_token": browser.csrf}, follow_redirects=True)
    assert "Monthly budget:" in answer.get_data(as_text=True)
    assert svc.clients.get(acme.id).budget_micros is None
