"""The users' examples against the real stack (gunicorn web, Celery worker, delivery worker,
beat, the Pixazo simulator): ``examples/receiver.py`` runs as its own process and is the client's
endpoint; ``examples/client.py`` runs as a script, creates a job with an Idempotency-Key and waits
for it. The job completes, the receiver verifies its one event, handles a redelivery of it once,
and rejects a tampered or wrongly signed copy; the client reports a 422 by the error shape."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from devtools.devstack import free_port
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "examples" / "client.py"
RECEIVER = ROOT / "examples" / "receiver.py"
MODEL = "pixverse-v6-text-to-video"
SCRIPT_TIMEOUT = 120
OTHER_SECRET = "whsec_" + "b3RoZXIgc2VjcmV0IG9mIDMyIGJ5dGVzIGxvbmchIQ=="


class Receiver:
    def __init__(self, url: str, log_path: Path) -> None:
        self.url = url
        self.log_path = log_path

    def lines(self) -> list[dict[str, Any]]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def outcomes(self, outcome: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["outcome"] == outcome]


@pytest.fixture
def client_and_receiver(system, tmp_path) -> Iterator[tuple[str, str, Receiver]]:
    """A client whose endpoint is the example receiver, running in its own process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks"
    client, api_key = system.new_client("examples", callback_url=url)
    secret = client.webhook_secrets[0]
    log_path = tmp_path / "receiver.log"
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--port", str(port)],
            env={**os.environ, "WEBHOOK_SECRET": secret, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: _answers(url) or proc.poll() is not None, 30, what="the receiver")
        assert proc.poll() is None, log_path.read_text()
        yield api_key, secret, Receiver(url, log_path)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 405  # up: POST only
    except requests.RequestException:
        return False


def run_client(system, api_key: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLIENT), "--base-url", system.web, "--timeout", "90", *args],
        env={**os.environ, "ORCHESTRATOR_API_KEY": api_key},
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )


def redeliver(system, event_id: str) -> None:
    """An operator's replay through the real CLI: the same event, the same webhook-id."""
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "jobs", "redeliver", event_id, "--json"],
        env={**os.environ, **system.orch.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def signed(secret: str, event_id: str, body: str) -> dict[str, str]:
    now = datetime.now(tz=UTC)
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
        "content-type": "application/json",
    }


def test_client_and_receiver_examples_against_the_real_stack(system, client_and_receiver):
    api_key, secret, receiver = client_and_receiver
    model_input = json.dumps({"prompt": "a red fox in snow"})
    args = ("--model", MODEL, "--input", model_input, "--idempotency-key", "example-order-1")

    done = run_client(system, api_key, *args)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["status"] == "completed" and job["output"]["media_url"], job
    assert "Idempotency-Key example-order-1" in done.stderr

    verified = wait_for(lambda: receiver.outcomes("verified"), 30, what="the verified event")
    assert len(verified) == 1
    event = verified[0]
    assert event["job_id"] == job["id"] and event["type"] == "job.completed"
    assert event["status"] == "completed" and event["media_url"] == job["output"]["media_url"][0]

    # The same Idempotency-Key again: the same job, not a second one (and not a second charge).
    again = run_client(system, api_key, *args)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == job["id"]
    assert system.sim_stats()["submits_accepted"] == 1

    # An operator redelivers the event: the receiver answers it and handles it once.
    redeliver(system, event["event_id"])
    wait_for(lambda: receiver.outcomes("duplicate"), 30, what="the redelivered event")
    assert [d["event_id"] for d in receiver.outcomes("duplicate")] == [event["event_id"]]

    # A copy of the event signed with the client's secret and then changed (status, and the
    # same event id), one signed with another secret, and an unsigned one are all refused.
    event_id = event["event_id"]
    body = json.dumps({"id": event_id, "type": "job.completed", "data": job})
    tampered = requests.post(
        receiver.url,
        data=body.replace('"completed"', '"failed"'),
        headers=signed(secret, event_id, body),
        timeout=5,
    )
    assert tampered.status_code == 400
    wrong_key = requests.post(
        receiver.url, data=body, headers=signed(OTHER_SECRET, event_id, body), timeout=5
    )
    assert wrong_key.status_code == 400
    unsigned = requests.post(receiver.url, data=body, timeout=5)
    assert unsigned.status_code == 400
    assert len(receiver.outcomes("rejected")) == 3
    assert len(receiver.outcomes("verified")) == 1


def test_client_example_reports_a_refusal_by_the_error_shape(system, client_and_receiver):
    api_key, _, receiver = client_and_receiver
    bad = json.dumps({"prompt": "x", "duration": "5"})  # a string where an integer is due
    done = run_client(system, api_key, "--model", MODEL, "--input", bad)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "422 validation_error" in done.stderr and "input.duration" in done.stderr
    assert done.stdout == ""
    unauthorized = run_client(system, "pxo_not_a_key", "--model", MODEL)
    assert unauthorized.returncode == 2 and "401 unauthorized" in unauthorized.stderr
    assert receiver.outcomes("verified") == []
