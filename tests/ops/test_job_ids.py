"""Job ids from outside (console URLs and forms, CLI arguments) are checked before any Redis key
is made of them: a malformed id is the same "not found" as a missing one, never a 500."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ops.cli import cli
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState

MISSING = "job_" + "0" * 26
SUFFIXES = (":timeline", ":events", "x", "\u00e9", " ")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_console_job_pages_answer_404_for_malformed_ids(browser, svc, make_job, suffix):
    job_id = make_job("cli_a", JobState.FAILED, request_id="req-ids")
    bad = job_id + suffix
    for url in (f"/ops/jobs/{bad}", *(f"/ops/jobs/{bad}/{a}" for a in actions_of())):
        answer = browser.get(url)
        assert answer.status_code == 404, url
        assert "Not found" in answer.get_data(as_text=True)
    for action in actions_of():
        form = {"confirm": "yes", "confirm_charge": "yes", "csrf_token": browser.csrf}
        assert browser.post(f"/ops/jobs/{bad}/{action}", data=form).status_code == 404
    assert svc.jobs.state_of(job_id) is JobState.FAILED
    assert actions.audit_log(svc) == []


def actions_of() -> tuple[str, ...]:
    return ("retry", "repoll", "cancel", "redeliver")


@pytest.mark.parametrize("suffix", SUFFIXES[:-1])  # a search is stripped of spaces
def test_console_search_for_a_malformed_id_finds_nothing(browser, make_job, suffix):
    job_id = make_job("cli_a", JobState.QUEUED)
    answer = browser.get("/ops/jobs", query_string={"q": job_id + suffix})
    assert answer.status_code == 200 and "No job" in answer.get_data(as_text=True)


@pytest.mark.parametrize("command", ["retry", "repoll", "cancel", "redeliver"])
def test_cli_refuses_a_malformed_job_id_before_touching_redis(monkeypatch, command):
    """Exit code 2 (a usage error) and one line; Redis is unreachable here, so nothing could
    have been read or written."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("PIXAZO_API_KEY", "test-pixazo-key-123456")
    monkeypatch.setenv("ORCHESTRATOR_SECRET_KEY", "test-secret-key-0123456789")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://orchestrator.test")
    result = CliRunner().invoke(cli, ["jobs", command, MISSING + ":timeline"])
    assert result.exit_code == 2, result.output
    assert "job id" in result.output
