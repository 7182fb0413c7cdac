"""Sign-in, sign-out, sessions and CSRF: nobody signed out sees data, no forged POST acts."""

from __future__ import annotations

import pytest

from ops.operators import MAX_FAILED_SIGN_INS, OperatorStore
from orchestrator import actions
from orchestrator.state import JobState
from tests.ops.conftest import OPERATOR, PASSWORD, csrf_of, sign_in

PAGES = (
    "/ops/",
    "/ops/jobs",
    "/ops/jobs?status=failed",
    "/ops/audit",
    "/ops/api/overview",
    "/ops/bulk/retry",
    "/ops/submissions/pause",
)


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


def test_too_many_failures_lock_the_name(app, operator):
    client = app.test_client()
    for _ in range(MAX_FAILED_SIGN_INS):
        assert sign_in(client, password="not the password").status_code == 401
    assert sign_in(client).status_code == 429


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
