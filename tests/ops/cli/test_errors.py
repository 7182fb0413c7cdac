"""Every failure of an ``orchestrator`` command has its exit status (3 not found, 4 refused,
5 unavailable, 2 usage, 1 anything else) and, with ``--json``, is one JSON object in the API's
error shape on stdout; without it, one line on stderr. Over fakeredis."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from ops.cli import base, cli
from ops.operators import OperatorStore
from orchestrator.core.config import ConfigError
from orchestrator.core.services import EXTENSION_NAME
from orchestrator.jobs.state import JobState
from orchestrator.services import build_services
from tests.conftest import make_settings
from tests.ops.conftest import job_maker

MISSING_JOB = "job_" + "0" * 26
MISSING_EVENT = "evt_" + "0" * 26


def json_error(result: Result, exit_code: base.ExitCode) -> dict[str, Any]:
    """The one JSON error object on stdout, with nothing on stderr."""
    assert result.exit_code == exit_code, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    answer = json.loads(lines[0])
    assert list(answer) == ["error"]
    assert set(answer["error"]) == {"code", "message", "details"}
    return dict(answer["error"])


def text_error(result: Result, exit_code: base.ExitCode) -> str:
    """One line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("orchestrator: ")
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "show", MISSING_JOB),
        ("jobs", "retry", MISSING_JOB),
        ("jobs", "repoll", MISSING_JOB),
        ("jobs", "cancel", MISSING_JOB),
        ("jobs", "redeliver", MISSING_EVENT),
        ("jobs", "redeliver", MISSING_JOB),
        ("jobs", "redeliver", "--client", "cli_nobody", "--since", "2026-01-01T00:00:00Z"),
        ("clients", "update", "cli_nobody", "--enable-endpoint"),
        ("clients", "rotate-secret", "cli_nobody"),
        ("clients", "drop-old-secrets", "cli_nobody"),
        ("operators", "delete", "nobody"),
    ],
)
def test_not_found_is_exit_3(invoke, args):
    assert json_error(invoke(*args, "--json"), base.ExitCode.NOT_FOUND)["code"] == "not_found"
    assert "no " in text_error(invoke(*args), base.ExitCode.NOT_FOUND)


def test_not_found_names_what_was_missing(invoke):
    error = json_error(invoke("jobs", "show", MISSING_JOB, "--json"), base.ExitCode.NOT_FOUND)
    assert error == {
        "code": "not_found",
        "message": f"no job {MISSING_JOB}",
        "details": {"job": MISSING_JOB},
    }


def test_a_retry_that_may_charge_again_is_refused_with_exit_4(invoke, svc):
    job_id = job_maker(svc)("cli_a", JobState.FAILED, request_id="pv-charged")
    error = json_error(invoke("jobs", "retry", job_id, "--json"), base.ExitCode.REFUSED)
    assert error["code"] == "needs_confirmation"
    assert error["details"] == {
        "status": "failed",
        "needs_confirmation": True,
        "request_id": "pv-charged",
    }
    assert "confirm" in text_error(invoke("jobs", "retry", job_id), base.ExitCode.REFUSED)
    assert svc.jobs.state_of(job_id) is JobState.FAILED
    assert json.loads(invoke("jobs", "retry", job_id, "--yes", "--json").stdout)["ok"] is True


def test_bulk_retry_without_yes_is_refused_with_the_counts(invoke, svc):
    job_maker(svc)("cli_a", JobState.FAILED, request_id="pv-bulk")
    error = json_error(invoke("jobs", "retry-failed", "--json"), base.ExitCode.REFUSED)
    assert error["code"] == "needs_confirmation"
    assert (error["details"]["count"], error["details"]["charged"]) == (1, 1)


@pytest.mark.parametrize(
    ("state", "command", "code"),
    [
        (JobState.COMPLETED, "cancel", "not_cancelable"),
        (JobState.QUEUED, "retry", "not_retryable"),
        (JobState.QUEUED, "repoll", "not_pollable"),
    ],
)
def test_an_action_the_job_state_does_not_allow_is_refused(invoke, svc, state, command, code):
    job_id = job_maker(svc)("cli_a", state)
    error = json_error(invoke("jobs", command, job_id, "--json"), base.ExitCode.REFUSED)
    assert error["code"] == code
    assert svc.jobs.state_of(job_id) is state


def test_an_existing_operator_is_refused(invoke, svc):
    OperatorStore(svc.redis).create("alice", "correct horse battery")
    again = invoke("operators", "create", "alice", "--password-stdin", "--json", stdin="x" * 20)
    error = json_error(again, base.ExitCode.REFUSED)
    assert "exists" in error["message"]
    done = invoke("operators", "create", "bob", "--password-stdin", "--json", stdin="y" * 20)
    assert json.loads(done.stdout) == {"operator": "bob", "done": "created"}


def test_a_usage_error_with_json_is_json_with_exit_2(invoke):
    error = json_error(
        invoke("jobs", "list", "--since", "yesterday", "--json"), base.ExitCode.USAGE
    )
    assert error["code"] == "usage" and "ISO 8601" in error["message"]
    error = json_error(invoke("jobs", "show", "--no-such-option", "--json"), base.ExitCode.USAGE)
    assert "--no-such-option" in error["message"]
    plain = invoke("jobs", "list", "--since", "yesterday")
    assert plain.exit_code == base.ExitCode.USAGE and "Usage:" in plain.stderr


def test_an_argument_after_double_dash_is_not_the_json_flag(invoke):
    # `--` ends the options: a job called "--json" is not a request for JSON.
    result = invoke("jobs", "show", "--", "--json")
    assert text_error(result, base.ExitCode.NOT_FOUND) == "orchestrator: no job --json\n"


def test_bad_configuration_is_exit_1_and_names_the_variable(monkeypatch):
    def bad_config() -> Flask:
        raise ConfigError("REDIS_URL", "required")

    monkeypatch.setattr(base, "create_app", bad_config)
    result = CliRunner().invoke(cli, ["jobs", "list", "--json"])
    error = json_error(result, base.ExitCode.ERROR)
    assert error["code"] == "configuration" and "REDIS_URL" in error["message"]
    assert error["details"] == {"variable": "REDIS_URL"}


PASSWORD = "s3cret-redis-pass"
REDIS_URL = f"redis://:{PASSWORD}@redis.internal:6390/2"


@pytest.fixture
def redis_down(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's Redis (configured with a password) refuses every connection."""
    server = fakeredis.FakeServer()
    server.connected = False
    settings = make_settings(redis_url=REDIS_URL, broker_url=REDIS_URL)
    down = build_services(settings, connection=fakeredis.FakeRedis(server=server))
    app.extensions[EXTENSION_NAME] = down
    monkeypatch.setattr(base, "create_app", lambda: app)


@pytest.mark.parametrize(
    "args",
    [
        ("jobs", "list"),
        ("jobs", "show", MISSING_JOB),
        ("clients", "list"),
        ("submissions", "pause"),
        ("operators", "list"),
    ],
)
def test_redis_down_is_one_line_without_the_password_and_exit_5(redis_down, args):
    line = text_error(CliRunner().invoke(cli, list(args)), base.ExitCode.UNAVAILABLE)
    assert line.startswith("orchestrator: cannot reach Redis at redis://redis.internal:6390/2 (")
    assert PASSWORD not in line
    result = CliRunner().invoke(cli, [*args, "--json"])
    error = json_error(result, base.ExitCode.UNAVAILABLE)
    assert error["code"] == "unavailable"
    assert error["details"]["url"] == "redis://redis.internal:6390/2"
    assert PASSWORD not in result.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://h:6379/0"),
        ("rediss://user:pw@h:6380/1", "rediss://h:6380/1"),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        (
            "redis+sentinel://:pw@s1:26379,s2:26379/primary/0",
            "redis+sentinel://s1:26379,s2:26379/primary/0",
        ),
        ("unix:///run/redis.sock?db=2&password=pw", "unix:///run/redis.sock"),
        ("amqp://guest:pw@rabbit:5672/vhost", "amqp://rabbit:5672/vhost"),
    ],
)
def test_urls_in_errors_carry_no_credentials(url, shown):
    assert base.redacted_url(url) == shown
