"""The console in real headless Chromium against the real system (gunicorn web, Celery worker
and beat, the Pixazo simulator, a consumer): an operator signs in, finds a failed job by its
Pixazo request_id, retries it past the second-charge warning and sees it complete; redelivers a
dead-lettered event and sees the new attempt; a forged POST without the CSRF token is refused.
Screenshots of the dashboard and a job page go to ``artifacts/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from orchestrator.core import keys
from tests.helpers import CHROMIUM, CHROMIUM_ARGS, wait_for
from webhooks.outbound import outbox

pytestmark = [pytest.mark.browser, pytest.mark.integration]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
MODEL = "pixverse-v6-text-to-video"
NAME, PASSWORD = "olga", "olga's long password"
STEP_MS = 15_000


@pytest.fixture
def page(system):
    if not os.path.exists(CHROMIUM):
        # In CI a missing browser is a failure (.ci/run installs it); on a laptop, a skip.
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.set_default_timeout(STEP_MS)
            yield context.new_page()
        finally:
            browser.close()


def create_operator(system) -> None:
    """Through the real CLI, in its own process, as an operator would."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "operators", "create", NAME, "--password-stdin"],
        input=PASSWORD + "\n",
        env={**os.environ, **system.orch.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def submit(system, key: str, prompt: str) -> str:
    answer = system.api(key).post(
        f"{system.web}/v1/jobs", json={"model": MODEL, "input": {"prompt": prompt}}, timeout=10
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def attempts_of(system, event_id: str) -> list[int | None]:
    return [a["status_code"] for a in outbox.attempt_log(system.redis, event_id)]


def test_operator_retries_and_redelivers_in_a_real_browser(system, page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ARTIFACTS.mkdir(exist_ok=True)
    create_operator(system)
    client, key = system.new_client("opsb")
    system.sim_config(error_rate=1.0)
    failed_id = submit(system, key, "a lighthouse in a storm")
    failed = wait_for(
        lambda: (j := system.job(key, failed_id))["status"] == "failed" and j, what="failure"
    )
    request_id = failed["request_id"]
    assert request_id and failed["error"]["code"] == "upstream_error"
    system.sim_config(error_rate=0.0)

    # Signed out, the console shows only the sign-in form.
    page.goto(f"{system.web}/ops/jobs/{failed_id}")
    assert "/ops/login" in page.url and request_id not in page.content()
    page.fill("input[name=name]", NAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/ops/jobs/{failed_id}")

    # Find the job by Pixazo's request_id, from the search box.
    page.goto(f"{system.web}/ops/")
    page.fill("input[name=q]", request_id)
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"**/ops/jobs/{failed_id}")
    assert page.inner_text(".titlebar .pill") == "failed"

    # Retry: the confirm page warns of the second charge and needs the box ticked.
    page.click("text=Retry submit…")
    warning = page.locator("#charge-warning")
    assert "Second charge." in warning.inner_text() and request_id in warning.inner_text()
    page.screenshot(path=str(ARTIFACTS / "ops-retry-confirm.png"))
    page.check("input[name=confirm_charge]")
    page.click("button:has-text('Yes, retry')")
    page.wait_for_url(f"**/ops/jobs/{failed_id}")
    assert "queued for resubmission" in page.inner_text(".flash")

    def completed() -> bool:
        page.reload()
        return page.inner_text(".titlebar .pill") == "completed"

    wait_for(completed, timeout=60, every=0.5, what="the retried job to complete")
    assert page.locator("video").count() == 1
    assert page.locator("video").get_attribute("src").startswith(system.sim)
    assert page.locator(".tl-operator, .tl-transition .actor").filter(has_text=NAME).count() >= 1
    assert client.id not in page.locator("video").get_attribute("src")
    page.screenshot(path=str(ARTIFACTS / "ops-job.png"), full_page=True)

    # A consumer outage dead-letters the next job's event (5 attempts on the test schedule).
    requests.post(
        f"{system.consumer}/_consumer/config", json={"name": "opsb", "status": 500}, timeout=5
    ).raise_for_status()
    second_id = submit(system, key, "a fox in the snow")
    dead = wait_for(lambda: system.redis.zrange(keys.DEAD_DELIVERIES, 0, -1), what="dead letter")
    event_id = dead[0]
    assert system.redis.hget(keys.event(event_id), "job_id") == second_id
    assert attempts_of(system, event_id) == [500] * 5
    requests.post(
        f"{system.consumer}/_consumer/config", json={"name": "opsb", "status": None}, timeout=5
    ).raise_for_status()

    page.goto(f"{system.web}/ops/")
    assert event_id in page.content()
    page.screenshot(path=str(ARTIFACTS / "ops-dashboard.png"), full_page=True)
    page.click(f"a[href*='event={event_id}']")
    page.click("button:has-text('Yes, redeliver')")
    page.wait_for_url(f"**/ops/jobs/{second_id}")

    def delivered() -> bool:
        page.reload()
        return page.locator(".tl-delivery_attempt").count() == 6

    wait_for(delivered, timeout=30, every=0.5, what="the redelivered attempt on the page")
    assert page.locator(".tl-delivery_attempt").last.locator(".pill").inner_text() == "200"
    assert attempts_of(system, event_id) == [500] * 5 + [200]
    assert system.redis.zcard(keys.DEAD_DELIVERIES) == 0
    timeline = system.timeline(second_id)
    assert [e["status_code"] for e in timeline if e["type"] == "delivery_attempt"] == [500] * 5 + [
        200
    ]

    # A forged POST (the session cookie, no CSRF token) is refused and changes nothing.
    forged = page.request.post(
        f"{system.web}/ops/jobs/{second_id}/cancel", form={"confirm": "yes"}, max_redirects=0
    )
    assert forged.status == 403
    forged = page.request.post(
        f"{system.web}/ops/jobs/{second_id}/retry",
        form={"confirm": "yes", "confirm_charge": "yes", "csrf_token": "guess"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert system.job(key, second_id)["status"] == "completed"

    page.goto(f"{system.web}/ops/jobs?client={client.id}")
    assert page.locator("table.list tbody tr").count() == 2
    page.screenshot(path=str(ARTIFACTS / "ops-jobs.png"), full_page=True)

    # Every action is in the audit log with the operator's name.
    page.goto(f"{system.web}/ops/audit")
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").nth(2).inner_text() for i in range(3)] == [
        "redeliver",
        "retry",
        "operator_create",
    ]
    assert [rows.nth(i).locator(".actor").inner_text() for i in range(2)] == [NAME, NAME]
    assert errors == []  # the console's script ran without an error on every page
