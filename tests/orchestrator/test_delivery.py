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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from orchestrator import actions, clock, delivery, keys
from orchestrator.cli import cli
from orchestrator.jobs import NewJob
from orchestrator.services import build_services
from orchestrator.state import JobState
from orchestrator.urls import Target
from tests.conftest import make_settings

S = JobState


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
    result = actions.redeliver_client_since(dsvc, client.id, 0, "test")
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
    result = actions.redeliver_client_since(dsvc, acme.id, clock.now() - 60, "ops")
    assert result.data["event_ids"] == [recent]
    assert evt(dsvc, recent)["state"] == delivery.PENDING
    assert evt(dsvc, old)["state"] == evt(dsvc, foreign)["state"] == delivery.DEAD
    assert not actions.redeliver_client_since(dsvc, "cli_nope", 0, "ops").ok


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
    url = f"{endpoint.url}/h"
    lease = keys.endpoint_in_flight(delivery.endpoint_hash(url))
    busy = {f"evt_busy{i}": clock.now() + 60 for i in range(delivery.ENDPOINT_MAX_IN_FLIGHT)}
    dsvc.redis.zadd(lease, busy)
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
    refused = delivery.send(target, b"{}", headers, 2.0)  # self-signed: not trusted by default
    assert refused.status_code is None and "SSL" in refused.error
    monkeypatch.setattr(delivery.certifi, "where", lambda: cert)
    answer = delivery.send(target, b"{}", headers, 2.0)
    assert answer.status_code == 200, answer.error
    assert "hooks.acme.test" in names
    assert endpoint.requests[-1]["headers"]["Host"] == f"hooks.acme.test:{port}"
    wrong = delivery.send(Target("https", "evil.test", port, "127.0.0.1", "/h"), b"{}", headers, 2)
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
