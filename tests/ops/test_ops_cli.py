"""The CLI's operator commands against a real Redis (a private redis-server): each command, its
``--json`` output, and what it enqueues on the real broker lists."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner

from devtools.devstack import Stack
from ops.cli import cli
from ops.operators import OperatorStore
from orchestrator.core import keys
from orchestrator.jobs import actions
from orchestrator.jobs.state import JobState
from orchestrator.services import Services, build_services
from tests.conftest import make_settings
from tests.ops.conftest import dead_letter, job_maker

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        yield url
    finally:
        stack.stop_all()


@pytest.fixture
def real(redis_url: str) -> Iterator[Services]:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    r.flushdb()
    svc = build_services(make_settings(redis_url=redis_url, broker_url=redis_url), connection=r)
    yield svc
    r.flushdb()


@pytest.fixture
def run(redis_url: str, monkeypatch: pytest.MonkeyPatch):
    env = {
        "REDIS_URL": redis_url,
        "PIXAZO_API_KEY": "test-pixazo-key-123456",
        "ORCHESTRATOR_SECRET_KEY": "test-secret-key-0123456789",
        "PUBLIC_BASE_URL": "https://orchestrator.test",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str, stdin: str | None = None, ok: bool = True):
        result = CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


def as_json(result) -> dict:
    return json.loads(result.output.strip().splitlines()[-1])


def test_operators_create_from_stdin_or_prompt(run, real):
    run("operators", "create", "carol", "--password-stdin", stdin="stdin password 1\n")
    run("operators", "create", "dave", stdin="prompt password 2\nprompt password 2\n")
    store = OperatorStore(real.redis)
    assert store.verify("carol", "stdin password 1") and store.verify("dave", "prompt password 2")
    assert "prompt password" not in run("operators", "list").output
    assert json.loads(run("operators", "list", "--json").output) == ["carol", "dave"]
    again = run(
        "operators", "create", "carol", "--password-stdin", stdin="other pass 3\n", ok=False
    )
    assert "exists" in again.output
    short = run("operators", "create", "erin", "--password-stdin", stdin="short\n", ok=False)
    assert "at least" in short.output
    run("operators", "create", "carol", "--password-stdin", "--replace", stdin="new password 4\n")
    assert store.verify("carol", "new password 4")
    run("operators", "delete", "dave")
    assert store.names() == ["carol"]


def test_jobs_list_filters_and_time_range(run, real):
    make = job_maker(real)
    now = time.time()
    old = make("cli_a", JobState.FAILED, request_id="pv-old", now=now - 7200)
    new = make("cli_a", JobState.FAILED, now=now - 60)
    other = make("cli_b", JobState.QUEUED, now=now - 30)

    def ids(*args: str) -> list[str]:
        return [j["id"] for j in as_json(run("jobs", "list", "--json", *args))["data"]]

    assert ids() == [other, new, old]
    assert ids("--status", "failed") == [new, old]
    assert ids("--client", "cli_b") == [other]
    assert ids("--status", "failed", "--error-code", "upstream_error") == [new, old]
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600))
    assert ids("--since", cut) == [other, new]
    assert ids("--until", cut) == [old]
    page = as_json(run("jobs", "list", "--json", "--limit", "2"))
    assert page["next_cursor"] and len(page["data"]) == 2
    assert ids("--limit", "2", "--cursor", page["next_cursor"]) == [old]
    assert run("jobs", "list", "--since", "yesterday", ok=False).exit_code == 2
    assert old in run("jobs", "list").output


def test_jobs_show_by_id_or_request_id(run, real):
    job_id = job_maker(real)("cli_a", JobState.FAILED, request_id="pv-show")
    shown = as_json(run("jobs", "show", "pv-show", "--json"))
    assert shown["id"] == job_id and shown["request_id"] == "pv-show"
    assert shown["timeline"][0]["type"] == "intake"
    assert list(shown["events"]) == ["job.failed:1"]
    assert "timeline:" in run("jobs", "show", job_id).output
    assert run("jobs", "show", "job_00000000000000000000000000", ok=False).exit_code == 3


def test_jobs_retry_needs_yes_for_a_second_charge_and_enqueues_the_submit(run, real):
    job_id = job_maker(real)("cli_a", JobState.FAILED, request_id="pv-r")
    refused = as_json(run("jobs", "retry", job_id, "--json", ok=False))["error"]
    assert refused["code"] == "needs_confirmation"
    assert refused["details"]["needs_confirmation"] is True
    assert refused["details"]["request_id"] == "pv-r"
    assert real.jobs.state_of(job_id) is JobState.FAILED
    done = as_json(run("jobs", "retry", job_id, "--yes", "--json"))
    assert done == {"ok": True, "message": "queued for resubmission", "status": "queued"}
    assert real.redis.llen("submit") == 1
    assert actions.audit_log(real)[0]["actor"].startswith("cli")


def test_jobs_repoll_redeliver_and_cancel(run, real):
    make = job_maker(real)
    submitted = make("cli_a", JobState.SUBMITTED, request_id="pv-p")
    assert as_json(run("jobs", "repoll", submitted, "--json"))["ok"] is True
    assert real.redis.llen("poll") == 1
    assert real.jobs.timeline(submitted)[-1]["action"] == "repoll"
    failed = make("cli_a", JobState.FAILED)
    event_id = dead_letter(real, failed)
    assert as_json(run("jobs", "redeliver", event_id, "--json"))["ok"] is True
    assert real.redis.zscore(keys.DEAD_DELIVERIES, event_id) is None
    assert real.redis.llen("delivery") == 1
    assert as_json(run("jobs", "cancel", submitted, "--json"))["status"] == "canceled"
    again = as_json(run("jobs", "cancel", submitted, "--json", ok=False))["error"]
    assert again["code"] == "not_cancelable" and again["details"]["status"] == "canceled"


def test_jobs_retry_failed_in_bulk(run, real):
    make = job_maker(real)
    charged = make("cli_a", JobState.FAILED, request_id="pv-b")
    plain = make("cli_a", JobState.FAILED)
    make("cli_a", JobState.FAILED, error_code="upstream_rejected")
    refused = as_json(run("jobs", "retry-failed", "--json", ok=False))["error"]["details"]
    assert (refused["count"], refused["charged"]) == (2, 1)
    done = as_json(run("jobs", "retry-failed", "--yes", "--json"))
    assert done["count"] == 2
    assert {real.jobs.state_of(charged), real.jobs.state_of(plain)} == {JobState.QUEUED}
    assert real.redis.llen("submit") == 2


def test_submissions_pause_and_resume(run, real):
    assert as_json(run("submissions", "pause", "--reason", "drill", "--json")) == {
        "paused": True,
        "changed": True,
    }
    status = as_json(run("submissions", "status", "--json"))
    assert status["paused"]["reason"] == "drill"
    assert run("submissions", "resume").output.strip() == "submissions resumed"
    assert as_json(run("submissions", "status", "--json"))["paused"] is None
    assert as_json(run("submissions", "resume", "--json"))["changed"] is False
