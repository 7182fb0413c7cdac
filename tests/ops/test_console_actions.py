"""Actions from the console: confirm pages, the second-charge warning, timeline and audit entries
with the operator's name, bulk actions with exact counts."""

from __future__ import annotations

from orchestrator.core import enqueue, keys
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState
from tests.ops.conftest import OPERATOR, dead_letter


def post(browser, url: str, **form: str):
    return browser.post(url, data={"csrf_token": browser.csrf, **form})


def test_retry_of_a_charged_job_warns_and_needs_the_second_charge_box(
    browser, svc, make_job, sent_tasks
):
    job_id = make_job("cli_a", JobState.FAILED, request_id="pv-1")
    page = browser.get(f"/ops/jobs/{job_id}/retry").get_data(as_text=True)
    assert "Second charge." in page and "pv-1" in page and 'name="confirm_charge"' in page
    answer = post(browser, f"/ops/jobs/{job_id}/retry", confirm="yes")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/retry")
    assert svc.jobs.state_of(job_id) is JobState.FAILED
    assert sent_tasks == []
    answer = post(browser, f"/ops/jobs/{job_id}/retry", confirm="yes", confirm_charge="yes")
    assert answer.headers["Location"] == f"/ops/jobs/{job_id}"
    assert svc.jobs.state_of(job_id) is JobState.QUEUED
    assert sent_tasks == [(enqueue.SUBMIT, (job_id,))]
    last = svc.jobs.timeline(job_id)[-1]
    assert (last["reason"], last["actor"], last["previous_request_id"]) == (
        "operator retry",
        OPERATOR,
        "pv-1",
    )
    assert [(e["actor"], e["action"], e["target"]) for e in actions.audit_log(svc)] == [
        (OPERATOR, "retry", job_id)
    ]
    assert "queued for resubmission" in browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)


def test_retry_of_a_job_never_accepted_has_no_charge_warning(browser, svc, make_job, sent_tasks):
    job_id = make_job("cli_a", JobState.FAILED, error_code="upstream_rejected")
    page = browser.get(f"/ops/jobs/{job_id}/retry").get_data(as_text=True)
    assert "Second charge." not in page
    post(browser, f"/ops/jobs/{job_id}/retry", confirm="yes")
    assert svc.jobs.state_of(job_id) is JobState.QUEUED


def test_an_action_without_the_confirm_step_does_nothing(browser, svc, make_job):
    job_id = make_job("cli_a", JobState.QUEUED)
    answer = post(browser, f"/ops/jobs/{job_id}/cancel")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/cancel")
    assert svc.jobs.state_of(job_id) is JobState.QUEUED
    assert actions.audit_log(svc) == []


def test_cancel_and_repoll_are_recorded_with_the_operator(browser, svc, make_job, sent_tasks):
    queued = make_job("cli_a", JobState.QUEUED)
    submitted = make_job("cli_a", JobState.SUBMITTED, request_id="pv-2")
    assert "job.canceled" in browser.get(f"/ops/jobs/{queued}/cancel").get_data(as_text=True)
    post(browser, f"/ops/jobs/{queued}/cancel", confirm="yes")
    assert svc.jobs.state_of(queued) is JobState.CANCELED
    assert svc.jobs.timeline(queued)[-1]["actor"] == OPERATOR
    post(browser, f"/ops/jobs/{submitted}/repoll", confirm="yes")
    assert svc.jobs.timeline(submitted)[-1] == {
        "at": svc.jobs.timeline(submitted)[-1]["at"],
        "type": "operator",
        "action": "repoll",
        "actor": OPERATOR,
    }
    assert (enqueue.POLL, (submitted,)) in sent_tasks
    assert [(e["action"], e["target"]) for e in actions.audit_log(svc)] == [
        ("repoll", submitted),
        ("cancel", queued),
    ]
    page = browser.get(f"/ops/jobs/{submitted}").get_data(as_text=True)
    assert "Operator action: repoll" in page and OPERATOR in page


def test_redeliver_an_event_from_the_job_page(browser, svc, make_job, sent_tasks):
    job_id = make_job("cli_a", JobState.FAILED)
    event_id = dead_letter(svc, job_id)
    page = browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)
    assert "dead letter" in page and f"redeliver?event={event_id}" in page
    assert event_id in browser.get(f"/ops/jobs/{job_id}/redeliver?event={event_id}").get_data(
        as_text=True
    )
    post(browser, f"/ops/jobs/{job_id}/redeliver", confirm="yes", event=event_id)
    assert svc.redis.zscore(keys.DEAD_DELIVERIES, event_id) is None
    assert svc.redis.zscore(keys.DUE_DELIVERY, event_id) is not None
    assert (enqueue.DELIVER, (event_id,)) in sent_tasks
    entry = svc.jobs.timeline(job_id)[-1]
    assert (entry["type"], entry["action"], entry["actor"]) == ("operator", "redeliver", OPERATOR)
    assert actions.audit_log(svc)[0]["target"] == event_id


def test_redeliver_refuses_an_event_of_another_job(browser, svc, make_job):
    mine = make_job("cli_a", JobState.FAILED)
    theirs = make_job("cli_a", JobState.FAILED)
    event_id = dead_letter(svc, theirs)
    answer = post(browser, f"/ops/jobs/{mine}/redeliver", confirm="yes", event=event_id)
    assert answer.status_code == 404
    assert svc.redis.zscore(keys.DEAD_DELIVERIES, event_id) is not None


def test_bulk_redeliver_replays_exactly_the_clients_dead_letters(
    browser, svc, make_job, client_factory, sent_tasks
):
    acme, _ = client_factory("acme")
    other, _ = client_factory("other")
    mine = [dead_letter(svc, make_job(acme.id, JobState.FAILED)) for _ in range(2)]
    theirs = dead_letter(svc, make_job(other.id, JobState.FAILED))
    jobs_page = browser.get(f"/ops/jobs?client={acme.id}").get_data(as_text=True)
    assert "Redeliver all dead-lettered of acme (2)" in jobs_page
    confirm = browser.get(f"/ops/bulk/redeliver?client={acme.id}").get_data(as_text=True)
    assert "<strong>2</strong> dead-lettered event(s) of acme" in confirm
    answer = post(browser, "/ops/bulk/redeliver", confirm="yes", client=acme.id)
    assert answer.status_code == 302
    assert sorted(t[1][0] for t in sent_tasks if t[0] == enqueue.DELIVER) == sorted(mine)
    assert svc.redis.zrange(keys.DEAD_DELIVERIES, 0, -1) == [theirs]
    assert [e["action"] for e in actions.audit_log(svc)].count("redeliver") == 2
    assert actions.audit_log(svc)[0]["action"] == "bulk_redeliver"


def test_bulk_retry_of_upstream_errors_counts_charges_and_needs_confirmation(
    browser, svc, make_job, sent_tasks
):
    charged = [make_job("cli_a", JobState.FAILED, request_id=f"pv-{i}") for i in range(2)]
    uncharged = make_job("cli_a", JobState.FAILED)
    rejected = make_job("cli_a", JobState.FAILED, error_code="upstream_rejected")
    page = browser.get("/ops/bulk/retry?error_code=upstream_error").get_data(as_text=True)
    assert "<strong>3</strong> failed job(s)" in page
    assert "2 of them may have been charged by Pixazo" in page
    answer = post(browser, "/ops/bulk/retry", confirm="yes", error_code="upstream_error")
    assert answer.status_code == 302
    assert all(svc.jobs.state_of(j) is JobState.FAILED for j in [*charged, uncharged])
    post(
        browser, "/ops/bulk/retry", confirm="yes", error_code="upstream_error", confirm_charge="yes"
    )
    assert all(svc.jobs.state_of(j) is JobState.QUEUED for j in [*charged, uncharged])
    assert svc.jobs.state_of(rejected) is JobState.FAILED
    assert sorted(t[1][0] for t in sent_tasks) == sorted([*charged, uncharged])
    audit = actions.audit_log(svc)
    assert audit[0]["action"] == "bulk_retry" and audit[0]["actor"] == OPERATOR
    assert [e["action"] for e in audit].count("retry") == 3


def test_pause_and_resume_submissions_from_the_dashboard(browser, svc):
    post(browser, "/ops/submissions/pause", confirm="yes", reason="Pixazo incident")
    assert svc.redis.hget(keys.SUBMISSIONS_PAUSED, "reason") == "Pixazo incident"
    assert svc.redis.hget(keys.SUBMISSIONS_PAUSED, "by") == OPERATOR
    post(browser, "/ops/submissions/resume", confirm="yes")
    assert not svc.redis.exists(keys.SUBMISSIONS_PAUSED)
    assert [e["action"] for e in actions.audit_log(svc)] == ["resume", "pause"]
    audit_page = browser.get("/ops/audit").get_data(as_text=True)
    assert "Pixazo incident" in audit_page and OPERATOR in audit_page
