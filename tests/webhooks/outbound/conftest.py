"""The consumer endpoint and the services the outbound delivery tests share."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.services import build_services
from tests.conftest import make_settings


class Endpoint:
    """A consumer that answers from a script: each entry (status, headers, body, delay)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict, bytes, float]] = []
        self.default = (200, {}, b'{"ok":true}', 0.0)
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests.append(
                    {
                        "at": time.time(),
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                status, headers, answer, delay = (
                    endpoint.script.pop(0) if endpoint.script else endpoint.default
                )
                time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.close()


@pytest.fixture
def dsvc(fake_redis, sent_tasks):
    """Services allowed to call loopback (dev mode), with a short timeout and schedule."""
    settings = make_settings(
        allow_http=True, delivery_timeout_seconds=0.5, delivery_retry_schedule=(0, 1, 1, 1)
    )
    return build_services(settings, connection=fake_redis)
