"""What the real processes send to Sentry carries no secret: a capture server stands in for
Sentry, a 402 from the simulator raises the submissions-paused alert from a Celery worker."""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools.devstack import Stack
from tests.conftest import System, start_system, wait_for
from tests.orchestrator.model_inputs import VALID_INPUTS
from tests.system.lifecycle_helpers import submit, wait_terminal

pytestmark = pytest.mark.integration


class SentryCapture(ThreadingHTTPServer):
    """Accepts Sentry envelopes and keeps their decoded bodies."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        self.server.bodies.append(data.decode(errors="replace"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sentry_system(redis_url: str) -> Iterator[tuple[System, SentryCapture]]:
    capture = SentryCapture()
    thread = threading.Thread(target=capture.serve_forever, daemon=True)
    thread.start()
    stack = Stack()
    # Its own redis-server: a second system on the shared database would share its queues.
    _, redis_url = stack.start_redis()
    stack, system = start_system(
        redis_url, {"SENTRY_DSN": capture.dsn}, worker_concurrency=2, stack=stack
    )
    try:
        yield system, capture
    finally:
        stack.stop_all()
        capture.shutdown()
        capture.server_close()


def test_the_402_alert_reaches_sentry_without_secrets(sentry_system):
    system, capture = sentry_system
    client, key = system.new_client("sentry")
    done = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
    assert wait_terminal(system, key, done)["status"] == "completed"
    system.sim_config(rate_402=1.0)
    job_id = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
    wait_for(
        lambda: any("submissions paused" in b for b in capture.bodies), 30, what="sentry alert"
    )
    assert system.job(key, job_id)["status"] == "queued"
    env = system.orch.env
    secrets = {
        "pixazo key": env["PIXAZO_API_KEY"],
        "secret key": env["ORCHESTRATOR_SECRET_KEY"],
        "api key": key,
        "webhook secret": client.webhook_secrets[0],
    }
    text = "\n".join(capture.bodies)
    assert "Pixazo submissions paused: insufficient_balance" in text  # the alert itself
    for name, secret in secrets.items():
        assert secret not in text, name
    assert not re.search(r"/webhooks/pixazo/job_\w+/[0-9a-f]{64}", text)
    assert not re.search(r"pxo_[A-Za-z0-9_\-]{20,}|whsec_[A-Za-z0-9+/=]{20,}", text)
