"""Downstream delivery through real processes: web, Celery worker and beat, the Pixazo simulator
and a verifying consumer (the shared system: schedule ``0,1,1,1,1`` so five attempts)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from orchestrator.core import clock, keys
from orchestrator.jobs.state import event_field
from tests.conftest import SYSTEM_ENV, wait_for
from tests.helpers import job_event_ids

pytestmark = pytest.mark.integration

MODEL = "pixverse-v6-text-to-video"
SCHEDULE_ATTEMPTS = len(SYSTEM_ENV["ORCHESTRATOR_DELIVERY_RETRY_SCHEDULE"].split(","))


def create_job(system, key: str) -> str:
    answer = system.api(key).post(
        f"{system.web}/v1/jobs", json={"model": MODEL, "input": {"prompt": "a cat"}}, timeout=10
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def configure(system, name: str, **knobs) -> None:
    answer = requests.post(
        f"{system.consumer}/_consumer/config", json={"name": name, **knobs}, timeout=5
    )
    answer.raise_for_status()


def event_of(system, job_id: str, event_type: str = "job.completed") -> dict:
    event_id = system.redis.hget(keys.job(job_id), event_field(event_type, 1))
    return system.redis.hgetall(keys.event(event_id)) if event_id else {}


def attempts_on_timeline(system, job_id: str) -> list[dict]:
    return [e for e in system.timeline(job_id) if e["type"] == "delivery_attempt"]


def received_at(entry: dict) -> float:
    return datetime.fromisoformat(entry["received_at"].replace("Z", "+00:00")).timestamp()


def test_every_event_verifies_in_order_and_the_consumer_rejects_tampering(system):
    client, key = system.new_client("verify")
    job_ids = [create_job(system, key) for _ in range(3)]
    events = wait_for(
        lambda: (got := system.consumer_events("verify")) and len(got) >= 3 and got,
        what="3 events",
    )
    assert len(events) == 3 and all(e["verified"] and e["status"] == 200 for e in events)
    assert sorted(e["job_id"] for e in events) == sorted(job_ids)
    for job_id in job_ids:
        assert len(job_event_ids(system.redis, job_id)) == 1  # one per type

    # The consumer is a real standardwebhooks verifier: forge a few requests against it.
    secret = client.webhook_secrets[0]
    body = json.dumps(events[-1]["payload"])

    def post(payload: str, when: datetime, webhook_id: str = "evt_probe") -> requests.Response:
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(secret).sign(webhook_id, when, body),
            "Content-Type": "application/json",
        }
        return requests.post(
            f"{system.consumer}/hooks/verify", data=payload, headers=headers, timeout=5
        )

    now = datetime.now(tz=UTC)
    assert post(body, now).status_code == 200
    tampered = body.replace('"completed"', '"failed"')
    assert tampered != body
    assert post(tampered, now).status_code == 400
    assert post(body, now - timedelta(minutes=10)).status_code == 400
    probes = [e for e in system.consumer_events("verify") if e["webhook_id"] == "evt_probe"]
    assert [p["verified"] for p in probes] == [True, False, False]


def test_500_three_times_then_200_is_delivered_on_attempt_four_with_one_webhook_id(system):
    _, key = system.new_client("flaky")
    configure(system, "flaky", fail_first=3)
    job_id = create_job(system, key)
    wait_for(lambda: event_of(system, job_id).get("state") == "delivered", what="delivery")
    seen = system.consumer_events("flaky")
    assert [e["status"] for e in seen] == [500, 500, 500, 200]
    assert [e["attempt"] for e in seen] == [1, 2, 3, 4]
    evt = event_of(system, job_id)
    assert {e["webhook_id"] for e in seen} == {evt["id"]} and evt["attempts"] == "4"
    timeline = attempts_on_timeline(system, job_id)
    assert [(t["attempt"], t["status_code"]) for t in timeline] == [
        (1, 500),
        (2, 500),
        (3, 500),
        (4, 200),
    ]
    assert all(t["at"] and isinstance(t["latency_ms"], int) and t["response"] for t in timeline)
    assert len(job_event_ids(system.redis, job_id)) == 1
    print(f"\nattempt receive gaps (s): {_gaps(seen)}")


def _gaps(seen: list[dict]) -> list[float]:
    times = [received_at(e) for e in seen]
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def test_a_consumer_down_all_schedule_long_is_dead_lettered_and_replayed_once(system):
    client, key = system.new_client("down")
    configure(system, "down", down=True)
    since = clock.iso(clock.now() - 1)
    job_id = create_job(system, key)
    wait_for(lambda: event_of(system, job_id).get("state") == "dead", what="dead letter")
    seen = system.consumer_events("down")
    assert len(seen) == SCHEDULE_ATTEMPTS and {e["status"] for e in seen} == {503}
    assert len(attempts_on_timeline(system, job_id)) == SCHEDULE_ATTEMPTS
    evt = event_of(system, job_id)
    assert system.redis.zscore(keys.DEAD_DELIVERIES, evt["id"]) is not None

    configure(system, "down", down=False)
    answer = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "jobs",
            "redeliver",
            "--client",
            client.id,
            "--since",
            since,
            "--json",
        ],
        env={**os.environ, **system.orch.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["ok"] and result["event_ids"] == [evt["id"]]
    wait_for(lambda: event_of(system, job_id).get("state") == "delivered", what="replay")
    time.sleep(1.5)  # room for a duplicate to show up, if there were one
    delivered = [e for e in system.consumer_events("down") if e["status"] == 200]
    assert len(delivered) == 1 and delivered[0]["webhook_id"] == evt["id"]
    assert len(system.consumer_events("down")) == SCHEDULE_ATTEMPTS + 1


def test_429_with_retry_after_2_waits_at_least_2_seconds_between_attempts(system):
    _, key = system.new_client("busy")
    configure(system, "busy", status=429, retry_after=2)
    job_id = create_job(system, key)
    seen = wait_for(
        lambda: (got := system.consumer_events("busy")) and len(got) >= 3 and got,
        what="3 attempts",
    )
    gaps = _gaps(seen[:3])
    print(f"\n429 Retry-After: 2 -> gaps between attempts (s): {gaps} (schedule says ~1 s)")
    assert all(g >= 2.0 for g in gaps), gaps
    timeline = attempts_on_timeline(system, job_id)
    assert timeline[0]["status_code"] == 429 and timeline[0]["retry_after"] == 2.0


def cli(system, *args: str) -> dict:
    answer = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env={**os.environ, **system.orch.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def test_secret_rotation_signs_with_both_until_the_old_one_is_dropped(system):
    """The consumer is told one secret at a time: old, then new; both verify during rotation."""
    client, key = system.new_client("rotate")
    old = client.webhook_secrets[0]
    new = cli(system, "clients", "rotate-secret", client.id)["webhook_secret"]
    assert new != old

    def delivered_with(secret: str) -> dict:
        configure(system, "rotate", secret=secret)
        job_id = create_job(system, key)
        wait_for(lambda: event_of(system, job_id).get("state") == "delivered", what="delivery")
        return [e for e in system.consumer_events("rotate") if e["job_id"] == job_id][-1]

    for secret in (old, new):
        got = delivered_with(secret)
        assert got["verified"] and got["attempt"] == 1 and got["status"] == 200
    cli(system, "clients", "drop-old-secrets", client.id, "--json")
    configure(system, "rotate", secret=old)
    job_id = create_job(system, key)
    first = wait_for(
        lambda: [e for e in system.consumer_events("rotate") if e["job_id"] == job_id],
        what="an attempt signed without the old secret",
    )[0]
    assert first["verified"] is False and first["status"] == 400
    configure(system, "rotate", secret=new)
    wait_for(lambda: event_of(system, job_id).get("state") == "delivered", what="new secret")
