"""The real ``orchestrator`` process with ``REDIS_URL`` at a closed port: one line naming the
server (never its password), no traceback, exit status 5; with ``--json`` one JSON error on
stdout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from ops.cli.base import ExitCode

PASSWORD = "hunter2-not-for-logs"
TIMEOUT_SECONDS = 60


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "PIXAZO_API_KEY": "test-pixazo-key-123456",
        "ORCHESTRATOR_SECRET_KEY": "test-secret-key-0123456789",
        "PUBLIC_BASE_URL": "https://orchestrator.test",
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


def test_redis_down_is_one_line_and_exit_5_in_a_real_process():
    port = closed_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"

    text = run("jobs", "list", redis_url=url)
    assert text.returncode == ExitCode.UNAVAILABLE, text.stderr
    assert text.stdout == ""
    assert "Traceback" not in text.stderr and PASSWORD not in text.stderr
    (line,) = text.stderr.splitlines()
    assert line.startswith(f"orchestrator: cannot reach Redis at redis://127.0.0.1:{port}/0 (")

    as_json = run("submissions", "status", "--json", redis_url=url)
    assert as_json.returncode == ExitCode.UNAVAILABLE, as_json.stderr
    assert "Traceback" not in as_json.stderr and PASSWORD not in as_json.stdout + as_json.stderr
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "unavailable"
    assert error["details"]["url"] == f"redis://127.0.0.1:{port}/0"
