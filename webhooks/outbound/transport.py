"""The guarded HTTP send of one delivery attempt.

``post`` signs the event, resolves and checks the consumer's host now (SSRF guard, the request
goes to that checked address: no DNS-rebinding window) and hands the request to ``send``: one
POST without redirects, under a wall-clock :class:`Deadline` (headers and body), whose outcome
is an :class:`Attempt` and never an exception. urllib3's timeouts are per read, so a consumer
sending one byte at a time would otherwise hold an attempt for as long as it likes; one watchdog
thread shuts the socket of any attempt past its deadline. Connections are kept alive per pinned
address (:mod:`webhooks.outbound.connections`).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import TracebackType

import urllib3
from urllib3.util.ssl_match_hostname import CertificateError

from orchestrator.core.records import Event
from orchestrator.core.services import Services
from orchestrator.core.urls import Target, UnsafeUrl, pinned_target
from orchestrator.upstream.pixazo import retry_after_seconds
from webhooks.outbound.connections import POOLS
from webhooks.outbound.signing import event_payload, webhook_headers

RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "pixazo-orchestrator-webhooks/1"
_RETRY_AFTER_CODES = (429, 503)
CONNECT_TIMEOUT_SECONDS = 5.0  # TCP connect, and the TLS handshake, each at most this long
_TLS_ERRORS = (ssl.SSLError, urllib3.exceptions.SSLError, CertificateError)
# How a kept connection the consumer has closed fails, before any answer
# (http.client.RemoteDisconnected is a ConnectionResetError).
_CLOSED_BY_PEER = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


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


class _Watchdog:
    """One daemon thread for every attempt's wall-clock deadline (instead of a thread per
    attempt): a heap of deadlines by end time, each expired when its time comes unless its
    attempt disarmed it first. Started on first use, and again in a forked child."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline.ends, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="delivery-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()  # it ends before whatever the thread is waiting for

    def __len__(self) -> int:
        with self._wake:
            return len(self._heap)

    def forget(self) -> None:
        """In a forked child: the parent's attempts (and their sockets) are not its own."""
        self._wake = threading.Condition()
        self._heap = []
        self._thread = None

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    heapq.heappop(self._heap)[2].expire()
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


class Deadline:
    """Shuts a connection's socket once ``seconds`` have passed, whatever it is waiting for.

    A per-read timeout restarts with every byte; this one does not. Used as a context manager:
    leaving it disarms it before the caller closes the socket or gives the connection back to
    its pool, so a late firing can never shut a socket that has since been reused.
    """

    def __init__(self, conn: urllib3.connection.HTTPConnection, seconds: float) -> None:
        self._conn: urllib3.connection.HTTPConnection | None = conn
        self.ends = time.monotonic() + seconds
        self._guard = threading.Lock()
        self.expired = False

    def remaining(self) -> float:
        return max(0.0, self.ends - time.monotonic())

    def expire(self) -> None:
        """The watchdog's call: past the deadline, shut the socket if still armed."""
        with self._guard:
            conn = self._conn
            if conn is None:
                return
            self.expired = True
            sock = conn.sock
            if sock is not None:
                # The plain socket's shutdown: an SSL wrapper's own would touch its state.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        _WATCHDOG.watch(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._guard:
            self._conn = None  # disarmed; the heap entry lapses harmlessly at its time


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.forget)


def _error_name(exc: Exception) -> str:
    """The failure's class name for the timeline; every TLS failure says ``SSLError``."""
    name = type(exc).__name__
    if isinstance(exc, _TLS_ERRORS) and "SSL" not in name:
        return f"SSLError: {name}"
    return name


def _deadline_error(timeout: float) -> str:
    return f"Timeout: no complete answer within the {timeout:g} s deadline"


def _read_excerpt(answer: urllib3.BaseHTTPResponse, deadline: Deadline) -> tuple[bytes, bool]:
    """Up to the first 1 KB of the body (what arrived before the deadline is kept), and
    whether the answer was read to its end (only then may the connection be used again)."""
    excerpt = b""
    try:
        while len(excerpt) < RESPONSE_EXCERPT_BYTES and not deadline.expired:
            chunk = answer.read1(RESPONSE_EXCERPT_BYTES - len(excerpt))
            if not chunk:
                break
            excerpt += chunk
    except (urllib3.exceptions.HTTPError, OSError):
        return excerpt, False  # the status line decides; a body cut short is a shorter excerpt
    return excerpt, answer.closed and not deadline.expired


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """One POST without redirects, all of it (connect, headers, body) within ``timeout`` seconds
    of wall-clock time; reads at most the first 1 KB of the answer. Never raises.

    The connection is a kept one to the same pinned address when there is one
    (:mod:`webhooks.outbound.connections`). A kept connection the consumer closed meanwhile
    fails before any answer: the request is sent again once, on a new connection, within the
    same deadline (as any keep-alive client does; the consumer dedupes on ``webhook-id``)."""
    started = time.monotonic()
    ends = started + timeout
    attempt, stale = _send_on_pooled(target, body, headers, timeout, ends)
    if stale:
        attempt, _ = _send_on_pooled(target, body, headers, timeout, ends, fresh=True)
    if attempt.status_code is None:  # a failure took all of it, a sent-again one too
        attempt = replace(attempt, latency_ms=ms_since(started))
    return attempt


def _send_on_pooled(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    ends: float,
    *,
    fresh: bool = False,
) -> tuple[Attempt, bool]:
    """The exchange on one pooled connection: (the attempt, whether it failed on a kept
    connection the consumer had closed, before any answer)."""
    started = time.monotonic()
    pool, conn = POOLS.checkout(target, min(CONNECT_TIMEOUT_SECONDS, timeout))
    if fresh:
        conn.close()
    kept = conn.sock is not None
    reusable = False
    try:
        with Deadline(conn, max(ends - started, 0.0)) as deadline:
            try:
                attempt, reusable = _exchange(conn, target, body, headers, deadline)
                return attempt, False
            except Exception as exc:  # any failure is a failed attempt
                if kept and not deadline.expired and isinstance(exc, _CLOSED_BY_PEER):
                    return Attempt(None, 0, "", _error_name(exc)), True
                error = _deadline_error(timeout) if deadline.expired else _error_name(exc)
                return Attempt(None, ms_since(started), "", error), False
    finally:
        POOLS.checkin(pool, conn, reusable=reusable)


def _exchange(
    conn: urllib3.connection.HTTPConnection,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    deadline: Deadline,
) -> tuple[Attempt, bool]:
    started = time.monotonic()
    if conn.sock is None:
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
    excerpt, complete = _read_excerpt(answer, deadline)
    after = None
    if answer.status in _RETRY_AFTER_CODES:
        after = retry_after_seconds(answer.headers.get("Retry-After"))
    text = excerpt.decode("utf-8", "replace")
    error = "body cut off at the deadline" if deadline.expired else ""
    attempt = Attempt(answer.status, ms_since(started), text, error, retry_after=after)
    return attempt, complete and not deadline.expired


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
