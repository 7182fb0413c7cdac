"""The process entry points stop on bad configuration with one line naming the variable."""

import subprocess
import sys

import pytest
from flask.sessions import SecureCookieSessionInterface

from orchestrator.app import BOOT_ERROR_EXIT_CODE, create_app_or_exit


def test_create_app_or_exit_prints_one_line_and_exits(monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/15")
    monkeypatch.setenv("ORCHESTRATOR_JOB_DEADLINE_SECONDS", "soon")
    with pytest.raises(SystemExit) as stopped:
        create_app_or_exit()
    assert stopped.value.code == BOOT_ERROR_EXIT_CODE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "configuration error: ORCHESTRATOR_JOB_DEADLINE_SECONDS: must be a whole number, got 'soon'"
    ]


def test_the_celery_entry_stops_on_a_missing_variable():
    env = {"PATH": "/usr/bin:/bin", "PIXAZO_API_KEY": "k"}
    run = subprocess.run(
        [sys.executable, "-c", "import workers.entry"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == BOOT_ERROR_EXIT_CODE
    assert run.stderr.strip().splitlines()[-1].startswith("configuration error: REDIS_URL")


def test_a_request_without_cookies_builds_no_session_signer(app, monkeypatch):
    """API requests and callbacks carry no cookie: their (empty, untouched) session is made
    without Flask's signing serializer; a request with a cookie still reads it through one."""
    built: list[object] = []
    real = SecureCookieSessionInterface.get_signing_serializer

    def counted(self, flask_app):
        built.append(flask_app)
        return real(self, flask_app)

    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counted)
    http = app.test_client()
    answer = http.get("/healthz")
    assert answer.status_code == 200 and "Set-Cookie" not in answer.headers and built == []
    http.set_cookie("session", "not-a-signed-session")
    assert http.get("/healthz").status_code == 200
    assert built == [app]
