"""PixazoClient against a real local HTTP server: what each answer (or silence) means for a job.

The rule under test: only an answer proving nothing was queued (429, a connection never made)
is retryable; anything that may have been accepted, including a 5xx and a read timeout after
the request was sent, is UNKNOWN and must never be resent blindly.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devtools.devstack import free_port
from orchestrator.upstream.pixazo import (
    MAX_RETRY_AFTER_SECONDS,
    Outcome,
    PixazoClient,
    retry_after_seconds,
)

PATH = "/pixverse-v6-text-to-video/v1/pixverse-v6-text-to-video-request"
BODY = {"prompt": "a cat"}
HOOK = "https://orchestrator.test/webhooks/pixazo/job_x/token"


class _Upstream:
    """A tiny Pixazo whose next answer the test sets; it records what it received."""

    def __init__(self) -> None:
        self.status = 202
        self.body: Any = {"request_id": "pixverse_1", "status": "QUEUED"}
        self.headers: dict[str, str] = {}
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                upstream.received.append(
                    {"headers": dict(self.headers), "body": json.loads(self.rfile.read(length))}
                )
                time.sleep(upstream.delay)
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                data = json.dumps(upstream.body).encode()
                try:
                    self.send_response(upstream.status)
                    for name, value in upstream.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    yield server
    server.close()


def _client(url: str, timeout: float = 2.0) -> PixazoClient:
    return PixazoClient(url, "test-pixazo-key-123456", timeout)


def test_202_is_accepted_with_request_id_and_headers(upstream: _Upstream) -> None:
    result = _client(upstream.url).submit(PATH, BODY, HOOK, "sync")
    assert result.outcome is Outcome.ACCEPTED
    assert result.request_id == "pixverse_1"
    sent = upstream.received[0]
    assert sent["body"] == BODY
    assert sent["headers"]["X-Webhook-URL"] == HOOK
    assert sent["headers"]["X-Webhook-Mode"] == "sync"
    assert sent["headers"]["Ocp-Apim-Subscription-Key"] == "test-pixazo-key-123456"


def test_202_without_request_id_is_unknown(upstream: _Upstream) -> None:
    upstream.body = {"status": "QUEUED"}
    assert _client(upstream.url).submit(PATH, BODY, HOOK, "terminal").outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (400, Outcome.REJECTED),
        (404, Outcome.REJECTED),
        (401, Outcome.AUTH),
        (403, Outcome.AUTH),
        (402, Outcome.INSUFFICIENT_BALANCE),
        (429, Outcome.RETRYABLE),
        # A 5xx reached Pixazo: it may have queued (and charged) the generation first.
        (500, Outcome.UNKNOWN),
        (502, Outcome.UNKNOWN),
        (503, Outcome.RETRYABLE),
        (504, Outcome.UNKNOWN),
    ],
)
def test_each_answer_is_classified(upstream: _Upstream, status: int, outcome: Outcome) -> None:
    upstream.status = status
    upstream.body = {"error": "Some Error", "message": "details"}
    result = _client(upstream.url).submit(PATH, BODY, HOOK, "terminal")
    assert result.outcome is outcome
    assert result.http_status == status
    assert "Some Error" in result.message


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_read_and_clamped(upstream: _Upstream, status: int) -> None:
    upstream.status = status
    upstream.headers = {"Retry-After": "7"}
    assert _client(upstream.url).submit(PATH, BODY, HOOK, "terminal").retry_after == 7.0
    upstream.headers = {"Retry-After": "999999"}
    clamped = _client(upstream.url).submit(PATH, BODY, HOOK, "terminal").retry_after
    assert clamped == MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 2.5 ", 2.5),
        ("-4", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


def test_read_timeout_after_send_is_unknown(upstream: _Upstream) -> None:
    upstream.delay = 1.0
    result = _client(upstream.url, timeout=0.2).submit(PATH, BODY, HOOK, "terminal")
    assert result.outcome is Outcome.UNKNOWN
    assert "Timeout" in result.message
    assert len(upstream.received) == 1  # it did reach Pixazo: a resend would be a second charge


def test_connection_refused_is_retryable() -> None:
    port = free_port()  # nothing listens there
    result = _client(f"http://127.0.0.1:{port}").submit(PATH, BODY, HOOK, "terminal")
    assert result.outcome is Outcome.RETRYABLE


def test_connection_closed_without_answer_is_unknown() -> None:
    """The peer read the request and hung up: it may have queued it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def accept_and_close() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    try:
        result = _client(f"http://127.0.0.1:{port}").submit(PATH, BODY, HOOK, "terminal")
    finally:
        thread.join(5)
        listener.close()
    assert result.outcome is Outcome.UNKNOWN


def test_status_parses_the_documented_shape(upstream: _Upstream) -> None:
    upstream.status = 200
    upstream.body = {
        "request_id": "pixverse_1",
        "status": "COMPLETED",
        "output": {"media_url": ["https://cdn/x.mp4"]},
        "created_at": "2026-05-22 13:19:23",
    }
    code, body, _ = _client(upstream.url).status("pixverse_1")
    assert code == 200
    assert body is not None and body["status"] == "COMPLETED"
    assert body["output"]["media_url"] == ["https://cdn/x.mp4"]


def test_status_with_a_foreign_shape_gives_no_body(upstream: _Upstream) -> None:
    upstream.status = 200
    upstream.body = {"state": "done"}
    code, body, excerpt = _client(upstream.url).status("pixverse_1")
    assert (code, body) == (200, None)
    assert "done" in excerpt


def test_the_environment_is_read_once_for_pixazo_not_per_request(upstream, monkeypatch) -> None:
    """Proxies come from the environment when the client is made; a later change (or a
    ~/.netrc) is not looked up on each request."""
    client = _client(upstream.url)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens: would fail
    monkeypatch.setenv("NO_PROXY", "")
    assert client.submit(PATH, BODY, HOOK, "sync").outcome is Outcome.ACCEPTED


def test_environment_proxies_apply_to_pixazo(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "")
    proxied = PixazoClient("https://gateway.pixazo.ai", "test-pixazo-key-123456", 2.0)
    assert proxied._session.proxies == {"https": "http://proxy.internal:3128"}
    monkeypatch.setenv("NO_PROXY", "pixazo.ai")
    direct = PixazoClient("https://gateway.pixazo.ai", "test-pixazo-key-123456", 2.0)
    assert direct._session.proxies == {}
