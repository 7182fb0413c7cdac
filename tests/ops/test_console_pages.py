"""The console's pages over fakeredis: exact dashboard numbers, filters, search, job page."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

from orchestrator.core import broker, enqueue, keys, tokens
from orchestrator.jobs.state import JobState
from tests.ops.conftest import MODEL, dead_letter

OTHER_MODEL = "pixverse-c1-text-to-video"


def overview(browser) -> dict:
    return json.loads(browser.get("/ops/api/overview").get_data(as_text=True))


def test_dashboard_counts_jobs_by_status_over_the_hour_and_the_day(browser, svc, make_job):
    now = time.time()
    for _ in range(3):
        make_job("cli_a", JobState.QUEUED, now=now - 60)
    make_job("cli_a", JobState.FAILED, now=now - 120)
    for _ in range(2):
        make_job("cli_a", JobState.COMPLETED, request_id=None, now=now - 5 * 3600)
    make_job("cli_a", JobState.COMPLETED, now=now - 2 * 86400)
    counts = {c["status"]: c for c in overview(browser)["counts"]}
    assert counts["queued"] == {"status": "queued", "last_hour": 3, "last_day": 3, "stored": 3}
    assert (counts["failed"]["last_hour"], counts["failed"]["last_day"]) == (1, 1)
    assert counts["completed"] == {
        "status": "completed",
        "last_hour": 0,
        "last_day": 2,
        "stored": 3,
    }
    page = browser.get("/ops/").get_data(as_text=True)
    assert 'data-refresh="10"' in page and "console.js" in page


def test_dashboard_shows_stuck_jobs_dead_letters_upstream_and_queues(
    browser, svc, make_job, monkeypatch
):
    asked: list[tuple[str, tuple[str, ...]]] = []

    def depths(url: str, queues) -> dict[str, int]:  # the broker is asked through kombu
        asked.append((url, tuple(queues)))
        return {"submit": 3, "callbacks": 0, "poll": 0, "delivery": 1, "reconcile": 0}

    monkeypatch.setattr(broker, "queue_depths", depths)
    now = time.time()
    stuck_after = svc.settings.stuck_after_seconds
    old = [
        make_job("cli_a", JobState.SUBMITTED, request_id=f"r{i}", now=now - stuck_after - 60)
        for i in range(2)
    ]
    make_job("cli_a", JobState.SUBMIT_UNKNOWN, now=now - stuck_after - 30)
    make_job("cli_a", JobState.SUBMITTED, request_id="fresh", now=now - 5)
    make_job("cli_a", JobState.COMPLETED, now=now - stuck_after - 60)  # finished: not stuck
    failed = make_job("cli_b", JobState.FAILED)
    event_id = dead_letter(svc, failed)
    svc.redis.hset(
        keys.SUBMISSIONS_PAUSED,
        mapping={
            "reason": "insufficient_balance",
            "since": "2026-01-01T00:00:00.000Z",
            "by": "pixazo 402",
        },
    )
    data = overview(browser)
    assert data["stuck"]["count"] == 3
    assert sorted(r["id"] for r in data["stuck"]["rows"][:2]) == sorted(old)
    assert data["stuck"]["submit_unknown"] == 1
    assert data["dead"]["count"] == 1 and data["dead"]["rows"][0]["id"] == event_id
    assert data["queues"]["queues"] == {
        "submit": 3,
        "callbacks": 0,
        "poll": 0,
        "delivery": 1,
        "reconcile": 0,
    }
    assert asked == [(svc.settings.broker_url, enqueue.ALL_QUEUES)]
    assert data["upstream"]["paused"]["reason"] == "insufficient_balance"
    page = browser.get("/ops/").get_data(as_text=True)
    assert "Submissions to Pixazo are paused" in page
    assert event_id in page and old[0] in page


def ids_on(page: str) -> list[str]:
    return [
        part.split('"')[0]
        for part in page.split('href="/ops/jobs/')[1:]
        if part.startswith("job_") and "/" not in part.split('"')[0]
    ]


def test_job_list_filters_by_status_client_model_error_and_time(browser, svc, make_job):
    now = time.time()
    a_failed = make_job("cli_a", JobState.FAILED, request_id="ra1", now=now - 30)
    a_rejected = make_job("cli_a", JobState.FAILED, error_code="upstream_rejected", now=now - 20)
    a_other = make_job("cli_a", JobState.QUEUED, model=OTHER_MODEL, now=now - 10)
    b_failed = make_job("cli_b", JobState.FAILED, model=OTHER_MODEL, now=now - 3 * 3600)
    cases = {
        "status=failed": [a_rejected, a_failed, b_failed],
        "client=cli_a": [a_other, a_rejected, a_failed],
        "client=cli_a&status=failed": [a_rejected, a_failed],
        f"client=cli_a&model={OTHER_MODEL}": [a_other],
        f"status=failed&model={OTHER_MODEL}": [b_failed],
        f"model={MODEL}": [a_rejected, a_failed],
        "status=failed&error_code=upstream_error": [a_failed, b_failed],
        "since=" + time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3600)): [
            a_other,
            a_rejected,
            a_failed,
        ],
        "until=" + time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 3600)): [b_failed],
    }
    for query, expected in cases.items():
        page = browser.get(f"/ops/jobs?{query}").get_data(as_text=True)
        assert ids_on(page) == expected, query


def test_job_list_pages_with_the_cursor_without_gaps_or_repeats(browser, svc, make_job):
    now = time.time()
    made = [make_job("cli_a", JobState.QUEUED, now=now - i) for i in range(120)]
    seen, url, pages = [], "/ops/jobs?client=cli_a", 0
    while url:
        page = browser.get(url).get_data(as_text=True)
        seen += ids_on(page)
        pages += 1
        marker = page.find('rel="next"')
        url = None
        if marker != -1:
            href = page.rfind('href="', 0, marker)
            url = page[href + 6 : page.find('"', href + 6)].replace("&amp;", "&")
    assert pages == 3
    assert seen == made  # newest first: made[0] is the newest


def test_search_finds_a_job_by_request_id_job_id_or_event_id(browser, svc, make_job):
    job_id = make_job("cli_a", JobState.FAILED, request_id="pv-req-42")
    event_id = next(iter(svc.jobs.event_ids(job_id).values()))
    for query in ("pv-req-42", job_id, event_id):
        answer = browser.get(f"/ops/jobs?q={query}")
        assert answer.status_code == 302 and answer.headers["Location"] == f"/ops/jobs/{job_id}"
    answer = browser.get("/ops/jobs?q=nothing-like-this")
    assert answer.status_code == 200
    assert "No job, event or Pixazo request_id matches" in answer.get_data(as_text=True)


def test_job_page_shows_input_output_and_the_whole_timeline_without_secrets(
    browser, svc, make_job, client_factory
):
    client, api_key = client_factory("acme", callback_url="https://hooks.acme.test/in?token=abc1")
    job_id = make_job(
        client.id, JobState.COMPLETED, request_id="pv-9", media_url="https://cdn.test/out.mp4"
    )
    webhook_url = tokens.callback_url("https://orchestrator.test", svc.settings.secret_key, job_id)
    token = tokens.callback_token(svc.settings.secret_key, job_id)
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "submit_attempt",
            "attempt": 1,
            "outcome": "accepted",
            "http_status": 202,
            "latency_ms": 87,
            "request_id": "pv-9",
            "answer": json.dumps({"webhook": webhook_url}),
        },
    )
    raw = json.dumps({"request_id": "pv-9", "status": "COMPLETED", "echo": webhook_url})
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "callback",
            "request_id": "pv-9",
            "upstream_status": "COMPLETED",
            "raw": raw,
            "duplicate": False,
        },
    )
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "callback",
            "request_id": "pv-9",
            "upstream_status": "COMPLETED",
            "raw": raw,
            "duplicate": True,
        },
    )
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "poll",
            "reason": "stuck",
            "poll": 1,
            "http_status": 200,
            "upstream_status": "PROCESSING",
            "answer": "{}",
        },
    )
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "delivery_attempt",
            "event_id": "evt_x",
            "event_type": "job.completed",
            "attempt": 1,
            "url": "https://hooks.acme.test/in?token=abc1",
            "status_code": 503,
            "latency_ms": 41,
            "response": "busy",
            "error": "",
        },
    )
    page = browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)
    assert '<video controls preload="metadata" src="https://cdn.test/out.mp4">' in page
    assert "a red fox" in page and "pv-9" in page
    for text in (
        "Received",
        "Submit attempt #1",
        "87 ms",
        "Callback received",
        "duplicate (ignored)",
        "Poll #1",
        "Delivery attempt #1",
        "41 ms",
        "503",
    ):
        assert text in page, text
    assert "+0." in page  # offsets from intake
    for secret in (
        token,
        svc.settings.secret_key,
        svc.settings.pixazo_api_key,
        client.webhook_secrets[0],
        api_key,
        "abc1",
    ):
        assert secret not in page
    assert "[redacted]" in page


def test_unknown_job_is_a_404_page(browser):
    answer = browser.get("/ops/jobs/job_00000000000000000000000000")
    assert answer.status_code == 404 and "Not found" in answer.get_data(as_text=True)


def test_only_http_media_urls_become_videos(browser, svc, make_job):
    job_id = make_job("cli_a", JobState.COMPLETED, media_url="javascript:alert(1)")
    page = browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)
    assert "<video" not in page


def test_pages_escape_what_clients_and_pixazo_sent(browser, svc, make_job):
    job_id = make_job("cli_a", JobState.QUEUED)
    svc.jobs.append_timeline(
        job_id,
        {
            "type": "callback",
            "upstream_status": "<b>x</b>",
            "raw": "<script>alert(1)</script>",
            "duplicate": False,
        },
    )
    page = browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


def test_malformed_cursor_shows_the_first_page(browser, make_job):
    make_job("cli_a")
    answer = browser.get("/ops/jobs?cursor=%%%bad")
    assert answer.status_code == 200
    assert "malformed" in answer.get_data(as_text=True)
    assert parse_qs(urlsplit("/ops/jobs?cursor=x").query)  # the page still renders its filters


def test_job_page_shows_the_jobs_warnings_escaped(browser, svc):
    from orchestrator.jobs.store import NewJob

    warning = {"field": "audio", "message": "not applied <b>"}
    new = NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal", warnings=(warning,))
    job_id = svc.jobs.create(new).job_id
    page = browser.get(f"/ops/jobs/{job_id}").get_data(as_text=True)
    assert "Warning" in page and "not applied &lt;b&gt;" in page
