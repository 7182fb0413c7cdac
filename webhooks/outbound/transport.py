"""The guarded HTTP send of one delivery attempt.

``post`` signs the event, resolves and checks the consumer's host now (SSRF guard, the request
goes to that checked address: no DNS-rebinding window) and hands the request to ``send``: one
POST without redirects, under a wall-clock :class:`Deadline` (headers and body), whose outcome
is an :class:`Attempt` and never an exception. urllib3's timeouts are per read, so a consumer
sending one byte at a time would otherwise hold an attempt for as long as it likes.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import certifi
import urllib3
from urllib3.util.ssl_match_hostname import CertificateError

from orchestrator.core.records import Event
from orchestrator.core.services import Services
from orchestrator.core.urls import Target, UnsafeUrl, pinned_target
from orchestrator.upstream.pixazo import retry_after_seconds
from webhooks.outbound.signing import event_payload, webhook_headers

RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "pixazo-orchestrator-webhooks/1"
_RETRY_AFTER_CODES = (429, 503)
CONNECT_TIMEOUT_SECONDS = 5.0  # TCP connect, and the TLS handshake, each at most this long
_TLS_ERRORS = (ssl.SSLError, urllib3.exceptions.SSLError, CertificateError)


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    latency_ms: int
    response: str
    error: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _connection(target: Target, connect_timeout: float) -> urllib3.connection.HTTPConnection:
    """A connection to the checked address only; the name is kept for SNI and the certificate."""
    if target.scheme == "https":
        return urllib3.connection.HTTPSConnection(
            target.address,
            target.port,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.connection.HTTPConnection(target.address, target.port, timeout=connect_timeout)


class Deadline:
    """Shuts a connection's socket once ``seconds`` have passed, whatever it is waiting for.

    A per-read timeout restarts with every byte; this one does not. Used as a context manager:
    leaving it disarms the watchdog before the caller closes the socket, so a late firing can
    never shut a descriptor that has since been reused.
    """

    def __init__(self, conn: urllib3.connection.HTTPConnection, seconds: float) -> None:
        self._conn = conn
        self._ends = time.monotonic() + seconds
        self._guard = threading.Lock()
        self._armed = True
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def _expire(self) -> None:
        with self._guard:
            if not self._armed:
                return
            self.expired = True
            sock = self._conn.sock
            if sock is not None:
                # The plain socket's shutdown: an SSL wrapper's own would touch its state.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._guard:
            self._armed = False
            self._timer.cancel()


def _error_name(exc: Exception) -> str:
    """The failure's class name for the timeline; every TLS failure says ``SSLError``."""
    name = type(exc).__name__
    if isinstance(exc, _TLS_ERRORS) and "SSL" not in name:
        return f"SSLError: {name}"
    return name


def _deadline_error(timeout: float) -> str:
    return f"Timeout: no complete answer within the {timeout:g} s deadline"


def _read_excerpt(answer: urllib3.BaseHTTPResponse, deadline: Deadline) -> bytes:
    """Up to the first 1 KB of the body; what arrived before the deadline is kept."""
    excerpt = b""
    try:
        while len(excerpt) < RESPONSE_EXCERPT_BYTES and not deadline.expired:
            chunk = answer.read1(RESPONSE_EXCERPT_BYTES - len(excerpt))
            if not chunk:
                break
            excerpt += chunk
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the status line decides; a body cut short is only a shorter excerpt
    return excerpt


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """One POST without redirects, all of it (connect, headers, body) within ``timeout`` seconds
    of wall-clock time; reads at most the first 1 KB of the answer. Never raises."""
    started = time.monotonic()
    conn = _connection(target, min(CONNECT_TIMEOUT_SECONDS, timeout))
    try:
        with Deadline(conn, timeout) as deadline:
            try:
                return _exchange(conn, target, body, headers, deadline)
            except Exception as exc:  # any failure is a failed attempt
                error = _deadline_error(timeout) if deadline.expired else _error_name(exc)
                return Attempt(None, ms_since(started), "", error)
    finally:
        conn.close()


def _exchange(
    conn: urllib3.connection.HTTPConnection,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    deadline: Deadline,
) -> Attempt:
    started = time.monotonic()
    conn.connect()
    if deadline.expired or conn.sock is None:
        raise TimeoutError("connect outlived the deadline")
    # The connect timeout is done with: urllib3 puts ``conn.timeout`` back on the socket when
    # it reads the answer, so from here on it is what is left of the deadline.
    conn.timeout = max(deadline.remaining(), 0.001)
    conn.sock.settimeout(conn.timeout)
    conn.request(
        "POST",
        target.path,
        body=body,
        headers={**headers, "Host": target.host_header},
        preload_content=False,
    )
    answer = conn.getresponse()
    if deadline.expired:  # a socket shut mid-headers reads as their end: not an answer
        raise TimeoutError("headers outlived the deadline")
    excerpt = _read_excerpt(answer, deadline)
    after = None
    if answer.status in _RETRY_AFTER_CODES:
        after = retry_after_seconds(answer.headers.get("Retry-After"))
    text = excerpt.decode("utf-8", "replace")
    error = "body cut off at the deadline" if deadline.expired else ""
    return Attempt(answer.status, ms_since(started), text, error, retry_after=after)


def ms_since(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.monotonic()`` reading)."""
    return int((time.monotonic() - started) * 1000)


def post(svc: Services, url: str, evt: Event, secrets: tuple[str, ...]) -> Attempt:
    """Sign and send ``evt`` to ``url``, resolving and checking the host now (SSRF guard)."""
    payload = event_payload(evt)
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **webhook_headers(secrets, evt.id, now, payload),
    }
    try:
        target = pinned_target(url, svc.settings.allow_http)
    except UnsafeUrl as exc:
        return Attempt(None, 0, "", f"refused: {exc}")
    return send(target, payload.encode(), headers, svc.settings.delivery_timeout_seconds)
