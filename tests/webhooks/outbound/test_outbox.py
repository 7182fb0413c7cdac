"""The outbox's compact event record and its one-step finish: what a settled event keeps (the
signed data, its callback_url, a capped attempt log), that a replay signs the same content, and
the Redis round trips of one delivery."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from orchestrator.core import keys
from orchestrator.core.records import Event
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob, render
from orchestrator.services import build_services
from tests.conftest import make_settings
from tests.helpers import clean_keys
from tests.webhooks.outbound.test_delivery import (
    attempts_on_timeline,
    evt,
    make_due,
    make_event,
)
from webhooks.outbound import delivery, outbox, redeliver, settled, signing
from webhooks.outbound.transport import Attempt

S = JobState
KEPT_FIELDS = {
    "id", "type", "job_id", "client_id", "created_at", "state", "attempts", "seq",
    "generation", "settled_at", "note", "tries",
}  # fmt: skip


def rich_event(
    svc, client_id: str, callback_url: str | None = None, to: JobState = JobState.COMPLETED
) -> str:
    """A completed (or ``to``) job with every field the job object shows set: output, cost,
    metadata."""
    job_id = svc.jobs.create(
        NewJob(
            client_id,
            "pixverse",
            {"prompt": "a fox", "duration": 5},
            {"ref": "r1", "ünï": "cødé"},
            callback_url,
            None,
            "terminal",
        )
    ).job_id
    svc.states.transition(job_id, expected=[S.QUEUED], to=S.SUBMITTED)
    return svc.states.transition(
        job_id,
        expected=[S.SUBMITTED],
        to=to,
        emit=True,
        fields={
            "output": json.dumps({"video_url": "https://cdn.test/v.mp4", "seconds": 5.5}),
            "estimated_cost_usd": "0.125",
            "request_id": "req_1",
            "upstream_status": "succeeded",
        },
    ).event_id


@pytest.mark.parametrize(
    ("to", "kept_snapshot"), [(S.FAILED, {settled.SIGNED_DATA}), (S.COMPLETED, set())]
)
def test_a_settled_event_keeps_only_what_is_shown_and_replayed(dsvc, endpoint, to, kept_snapshot):
    """A failed job's event keeps the data it was signed with (a retry rewrites the job); a
    completed job's keeps none: its job hash renders the same data for a replay."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = rich_event(dsvc, client.id, to=to)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    stored = evt(dsvc, event_id)
    plain = {k for k in stored if not settled.is_chunk(k)}
    assert plain == KEPT_FIELDS | {"t1"}
    assert all(len(v.encode()) <= 64 for v in stored.values())  # a listpack on a default Redis
    assert not dsvc.redis.exists(keys.event_attempts(event_id))  # no second key per event
    kept = outbox.get_event(dsvc, event_id)
    assert kept is not None and set(kept.snapshot) == kept_snapshot
    assert not any(k.startswith("snapshot") for k in stored)


def test_the_settled_snapshot_renders_the_same_data_and_keeps_the_callback_url():
    snapshot = {
        "id": "job_1",
        "status": "completed",
        "model": "pixverse",
        "input": json.dumps({"prompt": "x"}),
        "metadata": json.dumps({"a": "é"}),
        "output": json.dumps({"video_url": "https://cdn.test/v.mp4"}),
        "estimated_cost_usd": "0.1",
        "callback_url": "https://hooks.test/h?token=t",
        "created_at": "2026-01-01T00:00:00.000Z",
        "created_ms": "1767225600000",
        "budget_state": "committed",  # not shown: not kept
    }
    kept = settled.settled_snapshot(snapshot)
    assert kept["callback_url"] == snapshot["callback_url"]
    assert signing.event_data(kept) == render(snapshot)
    assert settled.settled_snapshot(kept) == kept  # settling again keeps it as it is
    assert settled.settled_snapshot({}) == {} and settled.pack({}) == []
    chunks = settled.pack(snapshot)
    assert all(len(c) <= settled.CHUNK for c in chunks)
    assert settled.unpack({f"d{i}": c for i, c in enumerate(chunks)}) == kept
    assert settled.unpack({"id": "evt_1"}) is None


@pytest.mark.parametrize("final", ["delivered", "dead"])
def test_a_replayed_event_signs_the_very_same_body(dsvc, endpoint, final):
    """Same event id, same data, byte for byte, after the record was made compact; the job's
    own callback_url is still where it goes."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/client")
    event_id = rich_event(dsvc, client.id, callback_url=f"{endpoint.url}/own")
    if final == "dead":
        endpoint.default = (410, {}, b"", 0.0)
    delivery.deliver(dsvc, event_id)
    assert evt(dsvc, event_id)["state"] == final
    endpoint.default = (200, {}, b"", 0.0)
    assert redeliver.redeliver(dsvc, event_id, "tester").ok
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    first, again = endpoint.requests
    assert first["body"] == again["body"]
    assert again["path"] == "/own" and again["headers"]["webhook-id"] == event_id
    assert json.loads(again["body"])["data"]["output"] == {
        "video_url": "https://cdn.test/v.mp4",
        "seconds": 5.5,
    }


def test_an_event_packed_whole_by_an_earlier_version_replays_the_same_body(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = rich_event(dsvc, client.id)
    event = outbox.get_event(dsvc, event_id)
    assert event is not None
    before = signing.event_body(event)
    from orchestrator.core.records import packed_snapshot_chunks

    name = keys.event(event_id)
    dsvc.redis.hdel(name, "snapshot")
    chunks = packed_snapshot_chunks(event.snapshot)  # the whole job hash, as before
    dsvc.redis.hset(name, mapping={f"snapshot_z{i}": c for i, c in enumerate(chunks)})
    assert signing.event_body(Event.from_hash(evt(dsvc, event_id))) == before
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    assert json.loads(endpoint.requests[0]["body"]) == before
    repacked = evt(dsvc, event_id)  # a completed job's event: its job renders the data now
    assert not any(k.startswith("snapshot") or settled.is_chunk(k) for k in repacked)
    assert signing.event_body(outbox.load_event(dsvc, {**repacked, "state": "pending"})) == before


def test_the_attempt_log_keeps_the_last_attempts_compactly(dsvc, endpoint, monkeypatch):
    dsvc.settings = make_settings(
        allow_http=True, delivery_timeout_seconds=0.5, delivery_retry_schedule=(0,) * 40
    )
    monkeypatch.setattr(outbox, "ATTEMPT_RECORDS_KEPT", 3)
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    endpoint.default = (503, {"Retry-After": "0"}, b"busy", 0.0)
    event_id = make_event(dsvc, client.id)
    for _ in range(4):
        assert delivery.deliver(dsvc, event_id) == "retry"
        make_due(dsvc, event_id)
    endpoint.default = (200, {}, b"", 0.0)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    log = outbox.attempt_log(dsvc.redis, event_id)
    assert [a["status_code"] for a in log] == [503, 503, 200]
    assert all(a["at"] and isinstance(a["latency_ms"], int) for a in log)
    stored = evt(dsvc, event_id)
    assert stored["attempts"] == "5" and stored["tries"] == "5"
    assert {k for k in stored if k.startswith("t") and k[1:].isdigit()} == {"t3", "t4", "t5"}
    assert [e["attempt"] for e in attempts_on_timeline(dsvc, event_id)] == [1, 2, 3, 4, 5]


def test_a_failed_attempt_keeps_its_error_in_the_record_and_no_token(dsvc, endpoint):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h?token=s3cret")
    endpoint.default = (200, {}, b"", 2.0)  # past the 0.5 s deadline
    event_id = make_event(dsvc, client.id)
    assert delivery.deliver(dsvc, event_id) == "retry"
    [entry] = outbox.attempt_log(dsvc.redis, event_id)
    assert entry["status_code"] is None and entry["error"].startswith("Timeout")
    assert "s3cret" not in json.dumps(evt(dsvc, event_id))


def test_an_attempt_log_record_always_fits_one_listpack_value():
    long = Attempt(None, 123456, "", "x" * 500 + "é" * 50)
    assert len(outbox.attempt_record(long, 1_800_000_000.123).encode()) <= 64
    assert outbox.attempt_record(Attempt(204, 3, ""), 1.5) == "1500 204 3"


def test_a_replay_racing_an_attempt_counts_the_attempt_on_the_new_count(dsvc, endpoint):
    """The finish step is compare-and-set on the count: a replay that reset it while the
    attempt was in flight does not make the attempt lost, nor counted on the old count."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    endpoint.default = (500, {}, b"", 0.0)
    assert delivery.deliver(dsvc, event_id) == "retry"
    make_due(dsvc, event_id)
    gate = threading.Event()
    real_send = delivery.post

    def slow(*args, **kwargs):
        answer = real_send(*args, **kwargs)
        dsvc.redis.hset(keys.event(event_id), "attempts", "0")  # a replay meanwhile
        gate.set()
        return answer

    delivery.post = slow
    try:
        assert delivery.deliver(dsvc, event_id) == "retry"
    finally:
        delivery.post = real_send
    assert gate.is_set()
    assert evt(dsvc, event_id)["attempts"] == "1"
    assert [e["attempt"] for e in attempts_on_timeline(dsvc, event_id)] == [1, 1]
    lease = keys.endpoint_in_flight(delivery.endpoint_hash(f"{endpoint.url}/h"))
    assert dsvc.redis.zcard(lease) == 0 and not dsvc.redis.exists(keys.delivery_lock(event_id))


def test_an_event_gone_during_its_attempt_leaves_no_partial_record(dsvc, endpoint, monkeypatch):
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    real_send = delivery.post

    def expire(*args, **kwargs):
        answer = real_send(*args, **kwargs)
        dsvc.redis.delete(keys.event(event_id))
        return answer

    monkeypatch.setattr(delivery, "post", expire)
    delivery.deliver(dsvc, event_id)
    assert not dsvc.redis.exists(keys.event(event_id))
    assert dsvc.redis.zscore(keys.DUE_DELIVERY, event_id) is None
    assert not dsvc.redis.exists(keys.delivery_lock(event_id))


class Counting:
    """Counts the round trips a Redis client makes (a pipeline is one)."""

    def __init__(self, client) -> None:
        self.trips = 0
        real = client.execute_command
        real_pipeline = client.pipeline

        def execute_command(*args, **kwargs):
            self.trips += 1
            return real(*args, **kwargs)

        def pipeline(*args, **kwargs):
            pipe = real_pipeline(*args, **kwargs)
            real_execute = pipe.execute

            def execute(*a, **k):
                self.trips += 1
                return real_execute(*a, **k)

            pipe.execute = execute
            return pipe

        client.execute_command = execute_command
        client.pipeline = pipeline


def test_a_delivery_takes_at_most_six_round_trips(dsvc, endpoint):
    """Read, lock with the event and its client, lease, finish (lease, count, record, settle,
    pack, unlock), and the timeline's packing (two); thirteen before."""
    client, _ = dsvc.clients.create("acme", f"{endpoint.url}/h")
    event_id = make_event(dsvc, client.id)
    delivery.deliver(dsvc, make_event(dsvc, client.id))  # scripts loaded
    counter = Counting(dsvc.redis)
    assert delivery.deliver(dsvc, event_id) == delivery.DELIVERED
    assert counter.trips <= 6, counter.trips


@pytest.fixture
def real_redis(redis_url):
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    clean_keys(r)
    r.config_set("hash-max-listpack-value", 64)  # Redis's default, which the bench uses
    yield r
    clean_keys(r)


def test_a_settled_event_is_a_small_listpack_on_a_real_redis(real_redis, endpoint, sent_tasks):
    settings = make_settings(allow_http=True, delivery_timeout_seconds=0.5)
    svc = build_services(settings, connection=real_redis)
    client, _ = svc.clients.create("acme", f"{endpoint.url}/h")
    event_id = rich_event(svc, client.id)
    assert delivery.deliver(svc, event_id) == delivery.DELIVERED
    name = keys.event(event_id)
    assert real_redis.object("encoding", name) == "listpack"
    # 1,368 B with the whole job packed, and a 552 B attempts list (benchmarks.bench_memory)
    assert real_redis.memory_usage(name) <= 768
    assert not real_redis.exists(keys.event_attempts(event_id))
