"""Delivery against a real local HTTP server (fakeredis for the store): what counts as success,
the schedule, Retry-After, 410, redirects, timeouts, ordering, the per-endpoint cap, replay."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from ops.cli import cli
from orchestrator.core import clock, enqueue, keys
from orchestrator.core.records import Event
from orchestrator.core.urls import Target
from orchestrator.jobs import timeline
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.services import build_services
from tests.conftest import make_settings
from tests.helpers import on_round_trips
from tests.webhooks.outbound.conftest import Endpoint
from webhooks.outbound import connections, delivery, endpoints, redeliver, scripts, transport

S = JobState


def make_event(svc, client_id: str, to: S = S.COMPLETED, callback_url: str | None = None) -> str:
    job_id = svc.jobs.create(
        NewJob(client_id, "pixverse", {"prompt": "x"}, {}, callback_url, None, "terminal")
    ).job_id
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTED)
    return svc.states.transition(job_id, expected=[S.SUBMITTED], to=to, emit=True).event_id


def evt(svc, event_id: str) -> dict:
    return svc.redis.hgetall(keys.event(event_id))


def attempts_on_timeline(svc, event_id: str) -> list[dict]:
    job_id = evt(svc, event_id)["job_id"]
    return [
        e
        for e in svc.jobs.timeline(job_id)
        if e.get("event_id") == event_id and e["type"] == "delivery_attempt"
    ]


def make_due(svc, event_id: str) -> None:
    """Let time pass until the event's next attempt (no sleeping in unit tests)."""
    svc.redis.hset(keys.event(event_id), "due_at", repr(clock.now() - 0.01))


def fill_endpoint(svc, url: str) -> tuple[str, dict[str, float]]:
    """Every in-flight slot of ``url`` held by other (live) attempts: its lease key and them."""
    lease = keys.endpoint_in_flight(delivery.endpoint_hash(url))
    busy = {f"evt_busy{i}": clock.now() + 60 for i in range(delivery.ENDPOINT_MAX_IN_FLIGHT)}
    svc.redis.zadd(lease, busy)
    return lease, busy


def test_a_2xx_delivers_a_verifiable_event_and_the_attempt_is_on_the_timeline(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/hooks/acme")
    endpoint.default = (204, {}, b"", 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    [request] = endpoint.requests
    assert request["path"] == "/hooks/acme" and request["headers"]["webhook-id"] == event_id
    body = Webhook(client.webhook_secrets[0]).verify(request["body"], request["headers"])
    assert body["id"] == event_id and body["type"] == "job.completed"
    [entry] = attempts_on_timeline(dsvc, event_id)
    assert entry["status_code"] == 204 and entry["attempt"] == 1 and entry["at"]
    assert isinstance(entry["latency_ms"], int)
    assert evt(dsvc, event_id)["state"] == delivery.DELIVERED
    assert dsvc.redis.zscore(keys.DUE_DELIVERY, event_id) is None


def test_only_the_first_kilobyte_of_the_answer_is_kept(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (500, {}, b"x" * 5000, 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "retry"
    [entry] = attempts_on_timeline(dsvc, event_id)
    assert entry["status_code"] == 500 and len(entry["response"]) == 1024


def test_a_redirect_is_a_failure_and_is_not_followed(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (302, {"Location": f"{endpoint.url}/elsewhere"}, b"", 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "retry"
    assert [r["path"] for r in endpoint.requests] == ["/h"]
    assert evt(dsvc, event_id)["state"] == delivery.PENDING


def test_a_timeout_is_a_failed_attempt(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (200, {}, b"", 2.0)  # the timeout is 0.5 s
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "retry"
    [entry] = attempts_on_timeline(dsvc, event_id)
    assert entry["status_code"] is None and "Timeout" in entry["error"]
    assert entry["latency_ms"] < 2000


def test_same_webhook_id_on_every_attempt_until_the_schedule_is_exhausted(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (500, {}, b"no", 0.0)
    event_id = make_event(dsvc, client.id)
    outcomes = []
    for _ in range(4):
        make_due(dsvc, event_id)
        outcomes.append(delivery.deliver(dsvc, event_id))
    assert outcomes == ["retry", "retry", "retry", delivery.DEAD]
    assert {r["headers"]["webhook-id"] for r in endpoint.requests} == {event_id}
    assert len(endpoint.requests) == 4 and len(attempts_on_timeline(dsvc, event_id)) == 4
    assert dsvc.redis.zscore(keys.DEAD_DELIVERIES, event_id) is not None
    assert delivery.dead_since(dsvc, client.id, 0) == [event_id]


def test_an_attempt_is_never_made_before_it_is_due_even_when_beat_claimed_it(dsvc, endpoint):
    """Beat pushes a claimed member's score ahead; the event's due_at decides, both ways."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.script = [(429, {"Retry-After": "30"}, b"", 0.0)]
    event_id = make_event(dsvc, client.id)
    before = clock.now()
    assert delivery.deliver(dsvc, event_id) == "retry"
    due_at = float(evt(dsvc, event_id)["due_at"])
    assert due_at >= before + 30
    dsvc.redis.zadd(keys.DUE_DELIVERY, {event_id: clock.now() + 60})  # beat's claim
    assert delivery.deliver(dsvc, event_id) == "not_due"
    assert len(endpoint.requests) == 1
    assert dsvc.redis.zscore(keys.DUE_DELIVERY, event_id) == pytest.approx(due_at)
    make_due(dsvc, event_id)
    dsvc.redis.zadd(keys.DUE_DELIVERY, {event_id: clock.now() + 60})  # claimed, then sent
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED


def test_retry_after_is_honoured_within_the_clamp_and_jitter_stays_within_bounds():
    assert delivery.next_delay((0, 5), 1, 2.0) >= 4.0
    assert delivery.next_delay((0, 1), 1, 2.0) == 2.0
    assert delivery.next_delay((0, 1), 2, 2.0) is None
    delays = [delivery.next_delay((0, 100), 1, None) for _ in range(200)]
    assert min(delays) >= 80 and max(delays) <= 120 and len(set(delays)) > 100


def test_410_disables_the_clients_endpoint_and_stops_delivery_there(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (410, {}, b"gone", 0.0)
    first = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, first) == delivery.DEAD
    assert dsvc.clients.get(client.id).endpoint_disabled is True
    second = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, second) == delivery.DEAD  # no request: kept for replay
    assert len(endpoint.requests) == 1
    assert set(delivery.dead_since(dsvc, client.id, 0)) == {first, second}
    dsvc.clients.update(client.id, endpoint_disabled=False)
    endpoint.default = (200, {}, b"", 0.0)
    result = redeliver.redeliver_client_since(dsvc, client.id, 0, "test")
    assert result.ok and sorted(result.data["event_ids"]) == sorted([first, second])
    assert [delivery.deliver(dsvc, e) for e in (first, second)] == [delivery.DELIVERED] * 2
    assert delivery.dead_since(dsvc, client.id, 0) == []


def test_a_410_from_a_jobs_own_callback_url_does_not_disable_the_client(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/registered")
    endpoint.default = (410, {}, b"", 0.0)
    event_id = make_event(dsvc, client.id, callback_url=f"{endpoint.url}/own")
    assert delivery.deliver(dsvc, event_id) == delivery.DEAD
    assert endpoint.requests[0]["path"] == "/own"
    assert dsvc.clients.get(client.id).endpoint_disabled is False


def test_replay_since_a_time_takes_only_that_clients_later_dead_letters(dsvc, endpoint):
    acme, _ = dsvc.clients.create("acme", f"{endpoint.url}/a")
    other, _ = dsvc.clients.create("other", f"{endpoint.url}/o")
    endpoint.default = (410, {}, b"", 0.0)
    old = make_event(dsvc, acme.id)
    delivery.deliver(dsvc, old)
    dsvc.redis.zadd(keys.client_dead_deliveries(acme.id), {old: clock.now() - 3600})
    dsvc.redis.hset(keys.client(acme.id), "endpoint_disabled", "0")
    recent = make_event(dsvc, acme.id)
    delivery.deliver(dsvc, recent)
    foreign = make_event(dsvc, other.id)
    delivery.deliver(dsvc, foreign)
    result = redeliver.redeliver_client_since(dsvc, acme.id, clock.now() - 60, "ops")
    assert result.data["event_ids"] == [recent]
    assert evt(dsvc, recent)["state"] == delivery.PENDING
    assert evt(dsvc, old)["state"] == evt(dsvc, foreign)["state"] == delivery.DEAD
    assert not redeliver.redeliver_client_since(dsvc, "cli_nope", 0, "ops").ok


def test_events_of_one_job_go_in_order(dsvc, endpoint):
    client, _ = dsvc.clients.create(
        "acme", f"{endpoint.url}/h", ("job.processing", "job.completed")
    )
    job_id = dsvc.jobs.create(NewJob(client.id, "m", {}, {}, None, None, "terminal")).job_id
    dsvc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTED)
    processing = dsvc.states.transition(
        job_id, expected=[S.SUBMITTED], to=S.PROCESSING, emit=True
    ).event_id
    completed = dsvc.states.transition(
        job_id, expected=[S.PROCESSING], to=S.COMPLETED, emit=True
    ).event_id
    assert delivery.deliver(dsvc, completed) == "waiting"
    assert delivery.deliver(dsvc, processing) == delivery.DELIVERED
    assert delivery.deliver(dsvc, completed) == delivery.DELIVERED
    assert [json.loads(r["body"])["type"] for r in endpoint.requests] == [
        "job.processing",
        "job.completed",
    ]


def test_an_event_type_the_client_does_not_subscribe_to_is_skipped(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h", ("job.completed",))
    event_id = make_event(dsvc, client.id, to=S.FAILED)
    assert delivery.deliver(dsvc, event_id) == delivery.SKIPPED
    assert endpoint.requests == []


def test_a_full_endpoint_defers_without_spending_an_attempt(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    lease, busy = fill_endpoint(dsvc, f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "deferred"
    assert endpoint.requests == [] and evt(dsvc, event_id)["attempts"] == "0"
    assert float(evt(dsvc, event_id)["due_at"]) > clock.now()
    other, _ = dsvc.clients.create("other", f"{endpoint.url}/other")
    assert delivery.deliver(dsvc, make_event(dsvc, other.id)) == delivery.DELIVERED
    dsvc.redis.zadd(lease, {k: clock.now() - 1 for k in busy})  # leases of killed workers lapse
    make_due(dsvc, event_id)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    assert dsvc.redis.zcard(lease) == 0


def test_send_connects_to_the_checked_address_with_the_name_in_the_host_header(
    dsvc, endpoint, monkeypatch
):
    """DNS pinning: the name is resolved once, and the request goes to that address."""
    real = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, port, *args, **kwargs):
        lookups.append(host)
        if host == "hooks.acme.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    port = endpoint.server.server_port
    client, _ = dsvc.clients.create("acme", f"http://hooks.acme.test:{port}/h")
    assert delivery.deliver(dsvc, make_event(dsvc, client.id)) == delivery.DELIVERED
    assert endpoint.requests[0]["headers"]["Host"] == f"hooks.acme.test:{port}"
    assert lookups.count("hooks.acme.test") == 1


def test_a_private_address_at_send_time_is_refused_without_a_request(
    fake_redis, sent_tasks, endpoint, monkeypatch
):
    svc = build_services(make_settings(allow_http=False), connection=fake_redis)
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        ],
    )
    client, _ = svc.clients.create("acme", "https://rebound.acme.test/h")
    event_id = make_event(svc, client.id)
    assert delivery.deliver(svc, event_id) == "retry"
    [entry] = attempts_on_timeline(svc, event_id)
    assert entry["error"].startswith("refused:") and entry["status_code"] is None
    assert endpoint.requests == []


def test_rotated_secrets_both_sign_every_attempt(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    old = client.webhook_secrets[0]
    new = dsvc.clients.rotate_secret(client.id)
    delivery.deliver(dsvc, make_event(dsvc, client.id))
    request = endpoint.requests[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(request["body"], request["headers"])["type"]
    dsvc.clients.drop_old_secrets(client.id)
    delivery.deliver(dsvc, make_event(dsvc, client.id))
    assert len(endpoint.requests[1]["headers"]["webhook-signature"].split(" ")) == 1


@pytest.fixture
def tls_endpoint(tmp_path, endpoint) -> Iterator[tuple[Endpoint, list[str], str]]:
    """The endpoint behind TLS with a self-signed certificate for hooks.acme.test."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=hooks.acme.test",
            "-addext",
            "subjectAltName=DNS:hooks.acme.test",
        ],
        check=True,
        capture_output=True,
    )
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    endpoint.server.socket = context.wrap_socket(endpoint.server.socket, server_side=True)
    yield endpoint, names, str(cert)


def test_https_goes_to_the_pinned_address_with_sni_and_certificate_checked_for_the_name(
    tls_endpoint, monkeypatch
):
    endpoint, names, cert = tls_endpoint
    port = endpoint.server.server_port
    target = Target("https", "hooks.acme.test", port, "127.0.0.1", "/h")
    headers = {"Content-Type": "application/json"}
    refused = transport.send(target, b"{}", headers, 2.0)  # self-signed: not trusted by default
    assert refused.status_code is None and "SSL" in refused.error
    monkeypatch.setattr(connections.certifi, "where", lambda: cert)
    answer = transport.send(target, b"{}", headers, 2.0)
    assert answer.status_code == 200, answer.error
    assert "hooks.acme.test" in names
    assert endpoint.requests[-1]["headers"]["Host"] == f"hooks.acme.test:{port}"
    wrong = transport.send(Target("https", "evil.test", port, "127.0.0.1", "/h"), b"{}", headers, 2)
    assert wrong.status_code is None and "SSL" in wrong.error  # name does not match the cert


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["evt_1", "--client", "cli_1", "--since", "2026-01-01T00:00:00Z"],
        ["--client", "cli_1"],
        ["--since", "2026-01-01T00:00:00Z"],
        ["--client", "cli_1", "--since", "yesterday"],
    ],
)
def test_the_redeliver_command_wants_one_target_or_a_client_and_a_valid_since(args, monkeypatch):
    env = {
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "PIXAZO_API_KEY": "k",
        "PUBLIC_BASE_URL": "https://orchestrator.test",
        "ORCHESTRATOR_SECRET_KEY": "test-secret-key-0123456789",
    }
    result = CliRunner().invoke(cli, ["jobs", "redeliver", *args], env=env)
    assert result.exit_code == 2, result.output


# ------------------------------------------------------------- issue 8: money and tenant safety


class Trickler:
    """A consumer that never finishes: it sends one byte every ``every`` seconds, either inside
    the headers (they never end) or inside a body that a Content-Length says is long."""

    def __init__(self, in_headers: bool, every: float = 0.05) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.in_headers, self.every = in_headers, every
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nX-Slow: "
            if self.in_headers
            else (b"HTTP/1.1 500 Oops\r\nContent-Length: 100000\r\n\r\n")
        )
        try:
            conn.recv(65536)
            conn.sendall(head)
            while not self.closed.wait(self.every):
                conn.sendall(b"a")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed.set()
        self.sock.close()


@pytest.mark.parametrize("in_headers", [True, False], ids=["headers", "body"])
def test_a_trickling_endpoint_is_cut_off_at_the_attempt_deadline(dsvc, in_headers):
    """urllib3's timeouts are per read: one byte every 50 ms would hold the attempt forever."""
    trickler = Trickler(in_headers)
    try:
        client, _ = dsvc.clients.create("acme", f"{trickler.url}/h")
        event_id = make_event(dsvc, client.id)
        outcome: list[str] = []
        started = time.monotonic()
        worker = threading.Thread(target=lambda: outcome.append(delivery.deliver(dsvc, event_id)))
        worker.daemon = True
        worker.start()
        worker.join(timeout=5)
        assert outcome == ["retry"], "the attempt outlived its 0.5 s deadline"
        assert time.monotonic() - started < 2.0
        [entry] = attempts_on_timeline(dsvc, event_id)
        assert "deadline" in entry["error"]
        # Headers cut off: no answer. A body cut off: the status line had come, and decides.
        assert entry["status_code"] == (None if in_headers else 500)
    finally:
        trickler.close()


def test_the_lock_and_the_lease_outlive_the_attempt_deadline(fake_redis, sent_tasks, endpoint):
    """A timeout longer than any fixed constant still leaves the lock held for the attempt."""
    svc = build_services(
        make_settings(allow_http=True, delivery_timeout_seconds=120.0), connection=fake_redis
    )
    client, _ = svc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(svc, client.id)
    seen: dict[str, float] = {}
    lease = keys.endpoint_in_flight(delivery.endpoint_hash(f"{endpoint.url}/h"))
    original = transport.send

    def spy(*args, **kwargs):
        seen["lock_ttl"] = svc.redis.ttl(keys.delivery_lock(event_id))
        seen["lease_lapse"] = svc.redis.zrange(lease, 0, -1, withscores=True)[0][1]
        seen["lease_ttl"] = svc.redis.ttl(lease)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transport, "send", spy)
        assert delivery.deliver(svc, event_id) == delivery.DELIVERED
    assert seen["lock_ttl"] > 120
    assert seen["lease_lapse"] > clock.now() + 120 and seen["lease_ttl"] > 120


def test_a_resend_never_runs_while_an_attempt_of_the_same_event_is_in_flight(dsvc, endpoint):
    """Even with the event's lock gone (a lapse), the live lease says the event is in flight:
    the re-send neither sends nor frees the first attempt's lease (the cap would leak)."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    url = f"{endpoint.url}/h"
    endpoint.default = (200, {}, b"", 0.4)
    event_id = make_event(dsvc, client.id)
    first = threading.Thread(target=delivery.deliver, args=(dsvc, event_id), daemon=True)
    first.start()
    lease = keys.endpoint_in_flight(delivery.endpoint_hash(url))
    wait_until(lambda: dsvc.redis.zcard(lease) == 1 and endpoint.requests)
    dsvc.redis.delete(keys.delivery_lock(event_id))  # the lock lapsed mid-attempt
    assert delivery.deliver(dsvc, event_id) == "in_flight"
    assert dsvc.redis.zcard(lease) == 1  # the first attempt still holds its lease
    first.join(timeout=5)
    assert len(endpoint.requests) == 1
    assert evt(dsvc, event_id)["state"] == delivery.DELIVERED


def test_the_endpoint_cap_counts_every_attempt_across_workers(dsvc, endpoint):
    """Five events to one slow endpoint at once from five threads: at most four are sent."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (200, {}, b"", 0.2)
    events = [make_event(dsvc, client.id) for _ in range(5)]
    outcomes: list[str] = []
    threads = [
        threading.Thread(target=lambda e=e: outcomes.append(delivery.deliver(dsvc, e)))
        for e in events
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert sorted(outcomes) == ["deferred"] + [delivery.DELIVERED] * 4


def test_a_freed_slot_hands_the_deferred_event_on_at_once(dsvc, endpoint, sent_tasks):
    """The event a full endpoint deferred is made due and enqueued by the attempt that frees a
    slot, not left for beat's next tick; delivered by that task, it is not sent twice."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (200, {}, b"", 0.2)
    events = [make_event(dsvc, client.id) for _ in range(5)]
    outcomes: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda e=e: outcomes.__setitem__(e, delivery.deliver(dsvc, e)))
        for e in events
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    [deferred] = [e for e, outcome in outcomes.items() if outcome == "deferred"]
    assert float(evt(dsvc, deferred)["due_at"]) <= clock.now()  # due now, not after a back-off
    assert (enqueue.DELIVER, (deferred,)) in sent_tasks
    assert dsvc.redis.zcard(keys.endpoint_waiting(delivery.endpoint_hash(f"{endpoint.url}/h"))) == 0
    assert delivery.deliver(dsvc, deferred) == delivery.DELIVERED
    assert len(endpoint.requests) == 5
    assert delivery.deliver(dsvc, deferred) != delivery.DELIVERED  # handed on once


def test_only_a_delivered_attempt_hands_its_slot_on(dsvc, endpoint, sent_tasks):
    """A failing (or trickling) endpoint gets its deferred events at their back-off: an attempt
    that failed frees its slot without sending another request there at once."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    lease, _ = fill_endpoint(dsvc, f"{endpoint.url}/h")
    deferred = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, deferred) == "deferred"
    dsvc.redis.zrem(lease, "evt_busy0")  # one slot free
    endpoint.default = (500, {}, b"down", 0)
    failing = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, failing) != delivery.DELIVERED
    assert float(evt(dsvc, deferred)["due_at"]) > clock.now()  # still at its back-off
    assert (enqueue.DELIVER, (deferred,)) not in sent_tasks
    endpoint.default = (200, {}, b"", 0)
    assert delivery.deliver(dsvc, make_event(dsvc, client.id)) == delivery.DELIVERED
    assert float(evt(dsvc, deferred)["due_at"]) <= clock.now()
    assert (enqueue.DELIVER, (deferred,)) in sent_tasks


def test_an_event_settled_while_it_waited_is_not_handed_on(dsvc, endpoint, sent_tasks):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    settled_meanwhile = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, settled_meanwhile) == delivery.DELIVERED  # by beat, say
    before = evt(dsvc, settled_meanwhile)
    sent_tasks.clear()
    assert endpoints.hand_on(dsvc, settled_meanwhile) is False
    assert evt(dsvc, settled_meanwhile) == before
    assert dsvc.redis.zscore(keys.DUE_DELIVERY, settled_meanwhile) is None
    assert sent_tasks == []


def test_a_waiting_set_is_bounded_in_time(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    url = f"{endpoint.url}/h"
    fill_endpoint(dsvc, url)
    assert delivery.deliver(dsvc, make_event(dsvc, client.id)) == "deferred"
    name = keys.endpoint_waiting(delivery.endpoint_hash(url))
    assert 0 < dsvc.redis.ttl(name) <= endpoints.WAITING_TTL_SECONDS


def wait_until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_an_event_is_not_sent_twice_when_two_deliveries_race_past_the_state_check(
    dsvc, endpoint, monkeypatch
):
    """The second reads ``pending`` before the first settles, and takes the lock after."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    stale = Event.from_hash(
        evt(dsvc, event_id)
    )  # what the second delivery read before the first finished
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    reads = iter([stale])
    real = delivery.get_event
    monkeypatch.setattr(delivery, "get_event", lambda svc, e: next(reads, None) or real(svc, e))
    assert delivery.deliver(dsvc, event_id) == "skipped"
    assert len(endpoint.requests) == 1


def test_any_exception_in_an_attempt_is_a_failed_attempt_not_a_crashed_task(
    dsvc, endpoint, monkeypatch
):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)

    def boom(*args, **kwargs):
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range")

    monkeypatch.setattr(transport, "send", boom)
    assert delivery.deliver(dsvc, event_id) == "retry"
    [entry] = attempts_on_timeline(dsvc, event_id)
    assert entry["status_code"] is None and "UnicodeEncodeError" in entry["error"]
    assert evt(dsvc, event_id)["attempts"] == "1"
    assert dsvc.redis.exists(keys.delivery_lock(event_id)) == 0


def test_an_idn_http_endpoint_is_delivered_to_its_a_label(dsvc, endpoint, monkeypatch):
    """A Unicode host stored before registration refused it: sent, not a crashed task."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "xn--e1afmkfd.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    port = endpoint.server.server_port
    client, _ = dsvc.clients.create("acme", f"http://пример.test:{port}/h")
    assert delivery.deliver(dsvc, make_event(dsvc, client.id)) == delivery.DELIVERED
    assert endpoint.requests[0]["headers"]["Host"] == f"xn--e1afmkfd.test:{port}"


def test_query_strings_never_reach_the_timeline(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h?token=s3cret")
    endpoint.default = (500, {}, b"", 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "retry"
    endpoint.default = (410, {}, b"", 0.0)
    make_due(dsvc, event_id)
    assert delivery.deliver(dsvc, event_id) == delivery.DEAD
    assert endpoint.requests[0]["path"] == "/h?token=s3cret"  # sent as registered
    job_id = evt(dsvc, event_id)["job_id"]
    stored = (
        json.dumps(dsvc.jobs.timeline(job_id))
        + json.dumps(dsvc.redis.lrange(keys.event_attempts(event_id), 0, -1))
        + json.dumps(evt(dsvc, event_id))
    )
    assert "s3cret" not in stored
    kinds = {e["type"] for e in dsvc.jobs.timeline(job_id)}
    assert {"delivery_attempt", "endpoint_disabled"} <= kinds


def keys_without_ttl(svc) -> set[str]:
    """Per-job and per-event keys that would never expire (shared indexes aside)."""
    return {
        k
        for k in svc.redis.scan_iter()
        if k.startswith(("job:", "evt:")) and svc.redis.ttl(k) == -1
    }


def test_replaying_an_event_whose_job_expired_is_refused_and_creates_no_key(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (410, {}, b"", 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == delivery.DEAD
    job_id = evt(dsvc, event_id)["job_id"]
    dsvc.redis.delete(keys.job(job_id), keys.timeline(job_id), keys.job_events(job_id))
    before = keys_without_ttl(dsvc)
    assert delivery.replay(dsvc, event_id) is False
    assert keys_without_ttl(dsvc) == before
    assert dsvc.redis.ttl(keys.event(event_id)) > 0
    assert evt(dsvc, event_id)["state"] == delivery.DEAD


def test_replaying_a_kept_event_keeps_every_key_expiring(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (410, {}, b"", 0.0)
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == delivery.DEAD
    before = keys_without_ttl(dsvc)
    assert delivery.replay(dsvc, event_id) is True
    assert keys_without_ttl(dsvc) <= before
    assert dsvc.redis.ttl(keys.event(event_id)) > 0
    assert evt(dsvc, event_id)["state"] == delivery.PENDING


def test_a_consumer_slower_than_the_connect_timeout_but_within_the_deadline_is_delivered(
    fake_redis, sent_tasks, endpoint, monkeypatch
):
    """The connect timeout bounds connecting only: urllib3 re-applies a connection's timeout
    to the socket when it reads the answer, so it must be the deadline's remainder by then
    (found by the isolation system test: a 10 s consumer was cut off at 5 s, every time)."""
    monkeypatch.setattr(transport, "CONNECT_TIMEOUT_SECONDS", 0.2)
    svc = build_services(
        make_settings(allow_http=True, delivery_timeout_seconds=3.0), connection=fake_redis
    )
    endpoint.default = (200, {}, b"ok", 0.6)
    client, _ = svc.clients.create("acme", f"{endpoint.url}/h")
    assert delivery.deliver(svc, make_event(svc, client.id)) == "delivered"


def test_an_event_is_read_from_its_hash_with_typed_fields():
    snapshot = {"id": "job_1", "callback_url": "https://x.example/h"}
    got = Event.from_hash(
        {
            "id": "evt_1",
            "type": "job.completed",
            "job_id": "job_1",
            "client_id": "cli_1",
            "created_at": "2026-01-01T00:00:00.000Z",
            "snapshot": json.dumps(snapshot),
            "state": "pending",
            "attempts": "2",
            "seq": "3",
            "generation": "2",
            "due_at": "1700000000.5",
        }
    )
    assert (got.attempts, got.seq, got.generation, got.due_at) == (2, 3, 2, 1700000000.5)
    assert got.snapshot == snapshot and got.deferrals == 0 and got.next_attempt_at is None
    # A hash a settle wrote after the event expired: not pending, never a crash.
    partial = Event.from_hash({"state": "delivered", "note": "200"})
    assert partial.state == "delivered" and partial.due_at is None and partial.snapshot == {}


def test_each_delivery_script_is_registered_once(dsvc, monkeypatch):
    monkeypatch.setattr(scripts, "_SCRIPTS", {})
    calls = []
    real = dsvc.redis.register_script

    def counting(source):
        calls.append(source)
        return real(source)

    monkeypatch.setattr(dsvc.redis, "register_script", counting)
    for _ in range(3):
        endpoints.lease(dsvc, "https://x.example/h", "evt_1", endpoints.Deferral(0.0, 1, "t"))
        endpoints.release(dsvc, "https://x.example/h", "evt_1", 0.0)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "name", ["endpoint_lease", "endpoint_release", "delivery_unlock", "event_replay"]
)
def test_a_delivery_script_documents_every_key_and_argument(name):
    import re

    from orchestrator.core import lua

    lines = lua.source(name).splitlines()
    header = "\n".join(line for line in lines if line.startswith("--"))
    code = "\n".join(line for line in lines if not line.startswith("--"))
    for kind in ("KEYS", "ARGV"):
        used = {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", code)}
        assert used and used <= {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", header)}


def test_delivery_has_no_inline_lua():
    import importlib
    import inspect
    import pkgutil

    import webhooks.outbound as package

    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        assert "redis.call(" not in inspect.getsource(module), info.name


def test_the_names_other_code_uses_still_resolve_on_the_delivery_module():
    """webhooks.outbound.redeliver, ops, workers and the model and system tests use these."""
    used = [
        "deliver", "post", "Attempt", "replay", "dead_since", "ENDPOINT_MAX_IN_FLIGHT",
        "endpoint_hash", "event_body", "sign", "next_delay", "_dead_letter",
        "PENDING", "DELIVERED", "DEAD", "SKIPPED",
    ]  # fmt: skip
    assert [name for name in used if not hasattr(delivery, name)] == []


def test_patching_delivery_post_replaces_the_transport_of_every_attempt(
    dsvc, endpoint, monkeypatch
):
    """The model tests stand in for the consumer by patching ``delivery.post``."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    sent = []

    def fake_post(svc, url, event, secrets):
        sent.append((url, event.id, secrets))
        return delivery.Attempt(204, 1, "")

    monkeypatch.setattr(delivery, "post", fake_post)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    assert sent == [(f"{endpoint.url}/h", event_id, client.webhook_secrets)]
    assert endpoint.requests == []


@pytest.mark.parametrize(("to", "keeps_data"), [(S.COMPLETED, False), (S.FAILED, True)])
def test_a_settled_event_keeps_its_snapshot_packed_and_sends_the_same_bytes_again(
    dsvc, endpoint, to, keeps_data
) -> None:
    """Issue 12: the snapshot is dropped once the event settles: a failed job's event keeps
    its data packed (a retry rewrites the job), a completed job's keeps none (no move leaves
    completed: the job hash renders the same data); either way a replay sends the very body
    (same id, same data) the first delivery sent, and the job's timeline is packed whole."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id, to)
    job_id = evt(dsvc, event_id)["job_id"]
    assert delivery.deliver(dsvc, event_id) == "delivered"
    stored = evt(dsvc, event_id)
    assert "snapshot" not in stored and bool(stored.get("d0")) is keeps_data
    assert all(len(v) <= 64 for v in stored.values())  # a listpack on a default Redis
    assert not dsvc.redis.exists(keys.timeline(job_id))  # packed into the job hash
    assert dsvc.redis.hget(keys.job(job_id), timeline.FIELD).startswith(timeline.PACKED_PREFIX)
    assert [e["type"] for e in dsvc.jobs.timeline(job_id)][-1] == "delivery_attempt"
    assert redeliver.redeliver(dsvc, event_id, "tester").ok
    assert delivery.deliver(dsvc, event_id) == "delivered"
    first, again = endpoint.requests
    assert first["body"] == again["body"]
    assert json.loads(again["body"])["id"] == event_id
    # the replay's entries went to a list with the job's TTL, packed in again once it settled
    assert not dsvc.redis.exists(keys.timeline(job_id))
    assert [e.get("attempt") for e in dsvc.jobs.timeline(job_id)][-1] == 1
    assert [e["type"] for e in dsvc.jobs.timeline(job_id)].count("delivery_attempt") == 2


def test_a_replay_whose_job_expired_since_is_skipped(dsvc, endpoint) -> None:
    """A completed job's settled event renders its data from the job: replayed, then its job
    gone before the attempt, it is settled as skipped (nothing to send), never a crash."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    job_id = evt(dsvc, event_id)["job_id"]
    assert delivery.deliver(dsvc, event_id) == "delivered"
    assert redeliver.redeliver(dsvc, event_id, "tester").ok
    dsvc.redis.delete(keys.job(job_id))
    assert delivery.deliver(dsvc, event_id) == delivery.SKIPPED
    assert evt(dsvc, event_id)["state"] == delivery.SKIPPED
    assert len(endpoint.requests) == 1


def _when_waiting(monkeypatch, svc, event_id: str, url: str, then) -> None:
    """Run ``then()`` once, right after the first round trip (of anyone) that leaves
    ``event_id`` in ``url``'s waiting set: another worker acting at that moment."""
    waiting = keys.endpoint_waiting(delivery.endpoint_hash(url))
    real_command = svc.redis.execute_command
    state = {"fired": False, "inside": False}

    def check() -> None:
        if state["fired"] or state["inside"]:
            return
        state["inside"] = True
        try:
            if real_command("ZSCORE", waiting, event_id) is not None:
                state["fired"] = True
                then()
        finally:
            state["inside"] = False

    on_round_trips(monkeypatch, svc.redis, after=check)


def test_a_slot_freed_while_the_deferral_is_written_hands_the_event_on_and_it_is_sent(
    dsvc, endpoint, sent_tasks, monkeypatch
):
    """Another worker's attempt ends the moment the deferred event joins the waiting set: it
    takes the event and its task runs at once. That task must be able to send it (the deferring
    attempt must not still hold the event's lock), or the event would sit, due, until beat's
    next tick (seconds) although its endpoint had a free slot all along."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    url = f"{endpoint.url}/h"
    lease, _ = fill_endpoint(dsvc, url)
    deferred, other = make_event(dsvc, client.id), make_event(dsvc, client.id)
    handed: list[str] = []

    def another_worker() -> None:
        dsvc.redis.zrem(lease, "evt_busy0")  # one of the busy attempts ended...
        assert delivery.deliver(dsvc, other) == delivery.DELIVERED  # ...another took the slot
        for task, (event_id,) in list(sent_tasks):  # and handed its slot on: that task runs
            if task == enqueue.DELIVER and event_id == deferred:
                handed.append(delivery.deliver(dsvc, deferred))

    _when_waiting(monkeypatch, dsvc, deferred, url, another_worker)
    assert delivery.deliver(dsvc, deferred) == "deferred"
    assert handed == [delivery.DELIVERED]
    assert evt(dsvc, deferred)["state"] == delivery.DELIVERED


def _attempt_ends_and_hands_on(svc, url: str, event_id: str) -> None:
    """What another worker's delivered attempt does to the endpoint when it ends (its part of
    event_finish.lua): its lease goes, and the earliest waiting event is handed on."""
    name = keys.endpoint_waiting(delivery.endpoint_hash(url))
    svc.redis.zrem(keys.endpoint_in_flight(delivery.endpoint_hash(url)), event_id)
    for waiting, _ in svc.redis.zpopmin(name):
        endpoints.hand_on(svc, waiting)


def test_a_slot_freed_between_the_check_and_the_wait_is_not_lost(
    dsvc, endpoint, sent_tasks, monkeypatch
):
    """Every busy attempt ends right after the deferring attempt found the endpoint full: the
    event must not miss them (joining the waiting set after the last one looked), or it waits
    out its back-off and beat's tick with the endpoint idle."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    url = f"{endpoint.url}/h"
    _, busy = fill_endpoint(dsvc, url)
    deferred = make_event(dsvc, client.id)
    real_lease = delivery.lease

    def lease_then_all_end(*args, **kwargs):
        taken = real_lease(*args, **kwargs)
        for busy_id in busy:
            _attempt_ends_and_hands_on(dsvc, url, busy_id)
        return taken

    monkeypatch.setattr(delivery, "lease", lease_then_all_end)
    assert delivery.deliver(dsvc, deferred) == "deferred"
    assert (enqueue.DELIVER, (deferred,)) in sent_tasks  # handed on by the first to end
    assert delivery.deliver(dsvc, deferred) == delivery.DELIVERED


def test_an_event_sent_by_beat_while_it_waited_does_not_take_a_later_hand_on(
    dsvc, endpoint, sent_tasks
):
    """An event deferred, then sent at its back-off by beat (a slot had freed by a failure,
    which hands nothing on), no longer waits: the slot its delivery frees goes to the next
    waiting event, not to its own stale place in the line (a hand-on to a settled event hands
    nothing on, and the next one would sit out its back-off with the endpoint idle)."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    url = f"{endpoint.url}/h"
    lease, _ = fill_endpoint(dsvc, url)
    early = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, early) == "deferred"
    dsvc.redis.zrem(lease, "evt_busy0")  # a busy attempt failed: its slot is free, not handed
    make_due(dsvc, early)  # beat's re-send at the back-off, to a slow consumer
    endpoint.default = (200, {}, b"", 0.3)
    beat_send = threading.Thread(target=delivery.deliver, args=(dsvc, early), daemon=True)
    beat_send.start()
    wait_until(lambda: dsvc.redis.zscore(lease, early) is not None)
    late = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, late) == "deferred"  # full: early and three busy ones
    dsvc.redis.zrem(lease, "evt_busy1", "evt_busy2", "evt_busy3")  # they fail: nothing handed
    sent_tasks.clear()
    beat_send.join(timeout=5)
    assert evt(dsvc, early)["state"] == delivery.DELIVERED
    assert (enqueue.DELIVER, (late,)) in sent_tasks  # early's freed slot went to late
