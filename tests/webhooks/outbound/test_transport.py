"""The guarded send's kept connections (reused only to the same pinned address, never after a
failure, a timeout or an answer not read to its end; idle ones let go) and its one watchdog
thread for every attempt's wall-clock deadline."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from orchestrator.core.urls import Target
from webhooks.outbound import connections, transport

HEADERS = {"Content-Type": "application/json"}


class KeepAliveServer:
    """An HTTP/1.1 consumer that keeps connections open; records which connection (client
    port) carried each request. Each answer: (status, body, delay, close after answering)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.peers: list[int] = []
        self.closed_by_client: list[int] = []
        self.default: tuple[int, bytes, float, bool] = (200, b"ok", 0.0, False)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle(self) -> None:
                super().handle()
                server.closed_by_client.append(self.client_address[1])

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.peers.append(self.client_address[1])
                status, body, delay, close = server.default
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                if close:  # gone without saying so (no Connection: close)
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def target(self, address: str = "127.0.0.1", host: str = "hooks.test") -> Target:
        return Target("http", host, self.port, address, "/h")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_kept_connections() -> Iterator[None]:
    connections.POOLS.clear()
    yield
    connections.POOLS.clear()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    s = KeepAliveServer("0.0.0.0")  # noqa: S104  # loopback test server: 127.0.0.1 and .2
    yield s
    s.close()


def send(target: Target, timeout: float = 2.0) -> transport.Attempt:
    return transport.send(target, b"{}", HEADERS, timeout)


def test_a_second_attempt_to_the_same_pinned_address_reuses_the_connection(server):
    assert send(server.target()).status_code == 200
    assert send(server.target()).status_code == 200
    assert len(server.peers) == 2 and len(set(server.peers)) == 1


def test_a_different_resolved_address_gets_a_new_connection(server):
    assert send(server.target("127.0.0.1")).status_code == 200
    assert send(server.target("127.0.0.2")).status_code == 200  # the name now resolves elsewhere
    assert len(set(server.peers)) == 2


def test_a_different_host_name_on_the_same_address_gets_a_new_connection(server):
    assert send(server.target(host="a.test")).status_code == 200
    assert send(server.target(host="b.test")).status_code == 200
    assert len(set(server.peers)) == 2


def test_a_connection_is_not_reused_after_a_timeout(server):
    server.default = (200, b"ok", 0.6, False)
    assert send(server.target(), timeout=0.3).status_code is None
    server.default = (200, b"ok", 0.0, False)
    assert send(server.target()).status_code == 200
    assert len(set(server.peers)) == 2


def test_a_connection_is_not_reused_after_an_answer_not_read_to_its_end(server):
    server.default = (500, b"x" * 5000, 0.0, False)  # only the first KB is read
    assert send(server.target()).status_code == 500
    server.default = (200, b"ok", 0.0, False)
    assert send(server.target()).status_code == 200
    assert len(set(server.peers)) == 2


def test_an_answer_read_to_its_end_keeps_the_connection_whatever_its_status(server):
    server.default = (503, b"busy", 0.0, False)
    assert send(server.target()).status_code == 503
    assert send(server.target()).status_code == 503
    assert len(set(server.peers)) == 1


def test_an_idle_connection_is_closed_instead_of_reused(server, monkeypatch):
    assert send(server.target()).status_code == 200
    monkeypatch.setattr(connections, "IDLE_SECONDS", 0.0)
    assert send(server.target()).status_code == 200
    first, second = server.peers
    assert first != second
    deadline = time.monotonic() + 2
    while first not in server.closed_by_client and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first in server.closed_by_client


def test_an_unused_pool_is_dropped_with_its_connections(server, monkeypatch):
    assert send(server.target("127.0.0.1")).status_code == 200
    assert len(connections.POOLS) == 1
    monkeypatch.setattr(connections, "IDLE_SECONDS", 0.0)
    monkeypatch.setattr(connections, "_SWEEP_EVERY_SECONDS", 0.0)
    time.sleep(0.01)
    assert send(server.target("127.0.0.2")).status_code == 200
    assert len(connections.POOLS) == 1  # the first pool went; the new one is kept
    deadline = time.monotonic() + 2
    while server.peers[0] not in server.closed_by_client and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.peers[0] in server.closed_by_client


def test_pools_are_bounded_in_number(server, monkeypatch):
    monkeypatch.setattr(connections, "MAX_KEYS", 2)
    pools = connections.Pools()
    for host in ("a.test", "b.test", "c.test"):
        pool, conn = pools.checkout(server.target(host=host), 1.0)
        pools.checkin(pool, conn, reusable=False)
    assert len(pools) == 2


def test_idle_connections_per_key_are_bounded(server):
    pools = connections.Pools()
    target = server.target()
    taken = [pools.checkout(target, 1.0) for _ in range(connections.PER_KEY + 2)]
    for pool, conn in taken:
        conn.connect()
        pools.checkin(pool, conn, reusable=True)
    [(pool, _)] = {id(p): (p, c) for p, c in taken}.values()
    assert pool.pool is not None and pool.pool.qsize() == connections.PER_KEY
    open_ = [c for _, c in taken if c.sock is not None]
    assert len(open_) == connections.PER_KEY  # the extra ones were closed when given back
    pools.clear()


def test_a_consumer_that_closes_keep_alive_connections_still_gets_every_attempt(server):
    server.default = (200, b"ok", 0.0, True)
    for _ in range(3):
        assert send(server.target()).status_code == 200
    assert len(server.peers) == 3 and len(set(server.peers)) == 3


def test_a_kept_connection_closed_just_before_the_request_is_sent_again_on_a_new_one(
    server, monkeypatch
):
    """The consumer closes between our liveness check and the request: sent again once."""
    server.default = (200, b"ok", 0.0, True)
    assert send(server.target()).status_code == 200
    time.sleep(0.05)
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)
    answer = send(server.target())
    assert answer.status_code == 200, answer.error
    assert len(set(server.peers)) == 2


def test_a_refused_connection_is_a_failed_attempt_and_leaves_nothing_to_reuse():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    answer = send(Target("http", "hooks.test", port, "127.0.0.1", "/h"))
    assert answer.status_code is None and "Connection" in answer.error


class Trickler:
    """Answers every request with one byte of its headers every 0.1 s, forever."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    @staticmethod
    def _trickle(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                while True:
                    conn.sendall(b"X")
                    time.sleep(0.1)
            except OSError:
                return


def deadline_threads() -> int:
    return sum(t.name == "delivery-deadlines" for t in threading.enumerate())


def test_concurrent_trickling_attempts_are_cut_at_their_deadline_by_one_watchdog_thread():
    trickler = Trickler()
    target = Target("http", "hooks.test", trickler.port, "127.0.0.1", "/h")
    answers: list[tuple[transport.Attempt, float]] = []

    def attempt() -> None:
        started = time.monotonic()
        answer = send(target, timeout=0.5)
        answers.append((answer, time.monotonic() - started))

    threads_before = threading.active_count()
    workers = [threading.Thread(target=attempt) for _ in range(8)]
    for w in workers:
        w.start()
    time.sleep(0.2)
    assert deadline_threads() == 1
    assert threading.active_count() <= threads_before + len(workers) + 1 + 8  # + trickles
    for w in workers:
        w.join(5)
    trickler.sock.close()
    assert len(answers) == 8
    for answer, took in answers:
        assert answer.status_code is None and "deadline" in answer.error
        assert took < 1.5


def test_a_disarmed_deadline_never_shuts_the_socket(server):
    pools = connections.Pools()
    pool, conn = pools.checkout(server.target(), 1.0)
    conn.connect()
    with transport.Deadline(conn, 0.05) as deadline:
        pass
    time.sleep(0.2)
    assert not deadline.expired
    conn.request("POST", "/h", body=b"{}", headers=HEADERS)
    assert conn.getresponse().status == 200  # the socket is whole
    pools.checkin(pool, conn, reusable=False)
    pools.clear()


def test_the_watchdog_expires_each_deadline_in_order_of_its_end(server):
    pools = connections.Pools()
    late_pool, late = pools.checkout(server.target(host="late.test"), 1.0)
    soon_pool, soon = pools.checkout(server.target(host="soon.test"), 1.0)
    late.connect()
    soon.connect()
    with transport.Deadline(late, 5.0) as long_one, transport.Deadline(soon, 0.1) as short_one:
        time.sleep(0.4)
        assert short_one.expired and not long_one.expired
    pools.checkin(late_pool, late, reusable=False)
    pools.checkin(soon_pool, soon, reusable=False)
    pools.clear()


def test_a_forked_child_does_not_watch_its_parents_attempts(server):
    pools = connections.Pools()
    pool, conn = pools.checkout(server.target(), 1.0)
    conn.connect()
    with transport.Deadline(conn, 0.3):
        pid = os.fork()
        if pid == 0:  # the child: its watchdog must never shut the parent's socket
            time.sleep(0.6)
            os._exit(0 if len(transport._WATCHDOG) == 0 else 1)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    pools.checkin(pool, conn, reusable=False)
    pools.clear()
