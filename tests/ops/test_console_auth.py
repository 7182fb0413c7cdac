"""Sign-in, sign-out, sessions and CSRF: nobody signed out sees data, no forged POST acts."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from ops import operators
from ops.operators import OperatorStore
from orchestrator.core import clock
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState
from tests.ops.conftest import OPERATOR, PASSWORD, csrf_of, sign_in

ATTACKER = "203.0.113.66"
OPERATOR_ADDRESS = "198.51.100.7"
PAGES = (
    "/ops/",
    "/ops/jobs",
    "/ops/jobs?status=failed",
    "/ops/audit",
    "/ops/api/overview",
    "/ops/bulk/retry",
    "/ops/submissions/pause",
)


class FrozenClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def frozen(monkeypatch) -> FrozenClock:
    moment = FrozenClock(1_800_000_000.25)
    monkeypatch.setattr(clock, "now", lambda: moment.now)
    return moment


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


class CountingHasher(PasswordHasher):
    """The tests' cheap argon2id, recording each verify (each costs the hash's memory)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.calls: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.calls.append(str(password))
        return super().verify(hash, password)


def count_verifies(monkeypatch) -> list[str]:
    """The argon2 verifies run from now on."""
    hasher = CountingHasher()
    monkeypatch.setattr(operators, "_hasher", hasher)
    return hasher.calls


def test_signed_out_pages_redirect_to_sign_in_and_xhr_gets_401(app, svc, make_job, operator):
    job_id = make_job("cli_a", JobState.FAILED, request_id="req-1")
    client = app.test_client()
    for url in (*PAGES, f"/ops/jobs/{job_id}", f"/ops/jobs/{job_id}/retry"):
        answer = client.get(url)
        assert answer.status_code == 302, url
        assert answer.headers["Location"].startswith("/ops/login?next=/ops"), url
        body = answer.get_data(as_text=True)
        assert "req-1" not in body and "pixverse" not in body and "Dashboard" not in body
        xhr = client.get(url, headers={"X-Requested-With": "XMLHttpRequest"})
        assert xhr.status_code == 401, url
        assert xhr.get_json()["error"]["code"] == "unauthorized"


def test_signed_out_post_changes_nothing(app, svc, make_job, operator):
    job_id = make_job("cli_a", JobState.QUEUED)
    client = app.test_client()
    token = csrf_of(client.get("/ops/login").get_data(as_text=True))
    answer = client.post(f"/ops/jobs/{job_id}/cancel", data={"confirm": "yes", "csrf_token": token})
    assert answer.status_code == 302
    assert svc.jobs.state_of(job_id) is JobState.QUEUED
    assert actions.audit_log(svc) == []


def test_sign_in_with_a_wrong_password_or_name_is_refused(app, operator):
    client = app.test_client()
    assert sign_in(client, password="wrong password!").status_code == 401
    assert sign_in(client, name="mallory").status_code == 401
    assert client.get("/ops/").status_code == 302
    answer = sign_in(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/ops/"
    page = client.get("/ops/").get_data(as_text=True)
    assert "Dashboard" in page and OPERATOR in page


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(app, operator):
    client = app.test_client()
    token = csrf_of(client.get("/ops/login").get_data(as_text=True))
    form = {"name": OPERATOR, "password": PASSWORD, "csrf_token": token}
    answer = client.post("/ops/login?next=/ops/jobs%3Fstatus%3Dfailed", data=form)
    assert answer.headers["Location"] == "/ops/jobs?status=failed"
    for evil in ("https://evil.test/ops", "//evil.test/ops", "/v1/jobs", "/ops\\@evil.test"):
        client = app.test_client()
        form["csrf_token"] = csrf_of(client.get("/ops/login").get_data(as_text=True))
        answer = client.post("/ops/login", data={**form, "next": evil})
        assert answer.headers["Location"] == "/ops/", evil


def test_failures_from_elsewhere_never_lock_out_the_operator(app, operator):
    """An anonymous client failing again and again for a name slows only itself down."""
    attacker = client_at(app, ATTACKER)
    for _ in range(3 * operators.FREE_FAILURES):
        assert sign_in(attacker, password="not the password").status_code in (401, 429)
    assert sign_in(client_at(app, OPERATOR_ADDRESS)).status_code == 302


def test_failures_from_one_address_meet_growing_delays_not_a_lockout(app, operator, frozen):
    client = client_at(app, ATTACKER)
    for _ in range(operators.FREE_FAILURES + 1):
        assert sign_in(client, password="not the password").status_code == 401
    delays = []
    for _ in range(8):
        waiting = sign_in(client)  # even the right password waits: a wait reveals nothing
        assert waiting.status_code == 429
        assert "Sign in" in waiting.get_data(as_text=True)
        delays.append(int(waiting.headers["Retry-After"]))
        frozen.advance(delays[-1])
        assert sign_in(client, password="not the password").status_code == 401
    assert delays == sorted(delays) and delays[0] < delays[-1]
    assert max(delays) <= operators.MAX_DELAY_SECONDS
    frozen.advance(operators.MAX_DELAY_SECONDS)
    assert sign_in(client).status_code == 302
    assert sign_in(client_at(app, ATTACKER), password="wrong again!").status_code == 401


@pytest.mark.parametrize(
    "name", ["x" * 200_000, "al ice", "ålice", "a" * 64, "-alice", "alice;DEL", "alice:x"]
)
def test_an_invalid_name_is_a_failed_sign_in_that_stores_and_hashes_nothing(
    app, svc, operator, monkeypatch, name
):
    verifies = count_verifies(monkeypatch)
    client = client_at(app, ATTACKER)
    token = csrf_of(client.get("/ops/login").get_data(as_text=True))
    before = set(svc.redis.scan_iter("*"))
    answer = client.post("/ops/login", data={"name": name, "password": "x", "csrf_token": token})
    assert answer.status_code == 401
    assert set(svc.redis.scan_iter("*")) == before
    assert verifies == []
    assert name not in answer.get_data(as_text=True)  # not echoed either


def test_what_a_failed_attempt_stores_is_small_and_expires(app, svc, operator):
    sign_in(client_at(app, ATTACKER), password="not the password")
    written = [k for k in svc.redis.scan_iter("*") if not k.startswith(("operator", "ops:session"))]
    assert written
    for key in written:
        assert len(key) < 100 and OPERATOR not in key and ATTACKER not in key
        assert 0 < svc.redis.ttl(key) <= operators.FAILED_WINDOW_SECONDS


def test_argon2_verifies_are_capped_per_second_for_the_whole_host(
    app, operator, monkeypatch, frozen
):
    monkeypatch.setattr(operators, "MAX_VERIFIES_PER_SECOND", 3)
    verifies = count_verifies(monkeypatch)
    answers = [
        sign_in(client_at(app, f"192.0.2.{i}"), password="not the password").status_code
        for i in range(6)
    ]
    assert answers == [401, 401, 401, 429, 429, 429] and len(verifies) == 3
    frozen.advance(1)
    assert sign_in(client_at(app, "192.0.2.9")).status_code == 302


def test_one_address_cannot_cycle_through_names(app, operator, monkeypatch, frozen):
    # Frozen clock: on a loaded machine the six sign-ins could straddle a minute boundary.
    monkeypatch.setattr(operators, "ADDRESS_ATTEMPTS_PER_MINUTE", 4)
    client = client_at(app, ATTACKER)
    answers = [sign_in(client, name=f"guess{i}").status_code for i in range(6)]
    assert answers == [401, 401, 401, 401, 429, 429]
    assert sign_in(client_at(app, OPERATOR_ADDRESS)).status_code == 302


def test_public_routes_never_name_the_operator(app, browser):
    form = {"confirm": "yes", "reason": "maintenance", "csrf_token": browser.csrf}
    assert browser.post("/ops/submissions/pause", data=form).status_code == 302
    anonymous = app.test_client()
    ready = anonymous.get("/readyz").get_json()
    assert ready["details"]["submissions_paused"] is True
    assert ready["details"]["pause"]["by"] == "an operator"
    assert ready["details"]["pause"]["reason"] == "maintenance"
    for url in ("/readyz", "/healthz", "/metrics", "/openapi.json", "/docs", "/ops/login", "/x"):
        assert OPERATOR not in anonymous.get(url).get_data(as_text=True), url


def test_post_without_or_with_a_wrong_csrf_token_is_refused(browser, svc, make_job):
    job_id = make_job("cli_a", JobState.QUEUED)
    for form in ({"confirm": "yes"}, {"confirm": "yes", "csrf_token": "forged"}):
        answer = browser.post(f"/ops/jobs/{job_id}/cancel", data=form)
        assert answer.status_code == 403
        assert "Refused" in answer.get_data(as_text=True)
    assert svc.jobs.state_of(job_id) is JobState.QUEUED
    assert actions.audit_log(svc) == []
    answer = browser.post(
        f"/ops/jobs/{job_id}/cancel", data={"confirm": "yes", "csrf_token": browser.csrf}
    )
    assert answer.status_code == 302
    assert svc.jobs.state_of(job_id) is JobState.CANCELED


def test_sign_in_starts_a_new_session_and_token(app, operator):
    client = app.test_client()
    before = csrf_of(client.get("/ops/login").get_data(as_text=True))
    sign_in(client)
    after = csrf_of(client.get("/ops/").get_data(as_text=True))
    assert before != after


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(app, browser):
    cookie = browser.get_cookie("session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert copy.get("/ops/").status_code == 200
    answer = browser.post("/ops/logout", data={"csrf_token": browser.csrf})
    assert answer.status_code == 302 and answer.headers["Location"] == "/ops/login"
    assert browser.get("/ops/").status_code == 302
    assert copy.get("/ops/").status_code == 302


def test_deleting_an_operator_ends_their_sessions(app, svc, browser):
    assert OperatorStore(svc.redis).delete(OPERATOR)
    assert browser.get("/ops/").status_code == 302


@pytest.mark.parametrize("header", ["Cache-Control", "X-Frame-Options", "Content-Security-Policy"])
def test_pages_are_not_cached_or_framed(browser, header):
    assert header in browser.get("/ops/").headers
