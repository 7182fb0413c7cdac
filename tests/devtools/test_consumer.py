import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from standardwebhooks.webhooks import Webhook

from devtools.consumer import consumer_command, create_consumer_app

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET_A = "whsec_" + base64.b64encode(b"a" * 24).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 24).decode()
SECRET_C = "whsec_" + base64.b64encode(b"c" * 24).decode()
WAIT_SECONDS = 10.0


def event(job_id="job_1", event_type="job.completed", event_id="evt_1"):
    return {
        "id": event_id,
        "type": event_type,
        "created_at": "2026-05-22T13:17:32.110Z",
        "data": {"id": job_id, "status": "completed"},
    }


def signed(payload, secret=SECRET_A, webhook_id="msg_1", when=None):
    body = json.dumps(payload)
    moment = when or datetime.now(tz=UTC)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, moment, body),
        "Content-Type": "application/json",
    }
    return body, headers


@pytest.fixture
def client():
    return create_consumer_app([SECRET_A, SECRET_B]).test_client()


def deliver(client, name="acme", **kwargs):
    body, headers = signed(kwargs.pop("payload", event()), **kwargs)
    return client.post(f"/hooks/{name}", data=body, headers=headers)


def events(client, name=None):
    query = "" if name is None else f"?name={name}"
    return client.get(f"/_consumer/events{query}").get_json()


def configure(client, **settings):
    return client.post("/_consumer/config", json=settings)


def test_valid_signature_is_accepted_and_recorded(client):
    response = deliver(client, payload=event(job_id="job_42", event_type="job.failed"))
    assert response.status_code == 200
    [recorded] = events(client)
    assert recorded["name"] == "acme"
    assert recorded["webhook_id"] == "msg_1"
    assert (recorded["type"], recorded["job_id"], recorded["event_id"]) == (
        "job.failed",
        "job_42",
        "evt_1",
    )
    assert recorded["verified"] is True
    assert recorded["status"] == 200
    assert recorded["payload"]["data"]["id"] == "job_42"
    assert re.match(r"^\d{4}-\d\d-\d\dT", recorded["received_at"])


def test_every_configured_secret_is_tried(client):
    assert deliver(client, secret=SECRET_B).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    ["wrong_secret", "body", "missing_headers", "old_timestamp", "garbage_signature"],
)
def test_invalid_signatures_are_400_and_recorded_unverified(client, tamper):
    body, headers = signed(event())
    if tamper == "wrong_secret":
        body, headers = signed(event(), secret=SECRET_C)
    elif tamper == "body":
        body = body.replace("job_1", "job_2")
    elif tamper == "missing_headers":
        headers = {"Content-Type": "application/json"}
    elif tamper == "old_timestamp":
        body, headers = signed(event(), when=datetime.now(tz=UTC) - timedelta(hours=1))
    else:
        headers["webhook-signature"] = "v1,not-base64!!"
    response = client.post("/hooks/acme", data=body, headers=headers)
    assert response.status_code == 400
    [recorded] = events(client)
    assert recorded["verified"] is False and recorded["status"] == 400


def test_per_name_secret(client):
    assert deliver(client, name="other", secret=SECRET_C).status_code == 400
    assert configure(client, name="other", secret=SECRET_C).status_code == 200
    assert deliver(client, name="other", secret=SECRET_C).status_code == 200
    assert deliver(client, name="other", secret=SECRET_A).status_code == 200  # global ones too


def test_fail_first_counts_attempts_per_webhook_id(client):
    configure(client, name="acme", fail_first=2, retry_after=7)
    codes = [deliver(client, webhook_id="msg_1").status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    first = deliver(client, webhook_id="msg_2")
    assert first.status_code == 500
    assert first.headers["Retry-After"] == "7"
    assert [e["attempt"] for e in events(client, "acme")] == [1, 2, 3, 1]
    assert deliver(client, name="calm", webhook_id="msg_1").status_code == 200


def test_fixed_status_and_down(client):
    configure(client, name="acme", status=410)
    assert deliver(client).status_code == 410
    assert "Retry-After" not in deliver(client).headers
    configure(client, name="acme", down=True)
    assert deliver(client).status_code == 503
    configure(client, name="acme", down=False, status=None)
    assert deliver(client).status_code == 200


def test_delay(client):
    configure(client, name="slow", delay_seconds=0.3)
    started = time.monotonic()
    assert deliver(client, name="slow").status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(
    "settings",
    [
        {"name": "acme", "nope": 1},
        {"name": "acme", "fail_first": -1},
        {"name": "acme", "fail_first": "2"},
        {"name": "acme", "status": 99},
        {"name": "acme", "down": "yes"},
        {"name": "acme", "secret": ""},
        {"fail_first": 1},
    ],
)
def test_bad_config_is_400(client, settings):
    assert configure(client, **settings).status_code == 400


def test_config_is_readable_without_revealing_the_secret(client):
    configure(client, name="acme", fail_first=1, secret=SECRET_C)
    shown = client.get("/_consumer/config?name=acme").get_json()
    assert shown["fail_first"] == 1
    assert SECRET_C not in json.dumps(shown)


def test_events_filter_and_reset(client):
    deliver(client, name="a")
    deliver(client, name="b")
    configure(client, name="a", down=True)
    assert [e["name"] for e in events(client)] == ["a", "b"]
    assert [e["name"] for e in events(client, "b")] == ["b"]
    client.post("/_consumer/reset")
    assert events(client) == []
    assert deliver(client, name="a").status_code == 200  # behaviour cleared too


def test_cli_rejects_a_bad_secret():
    result = CliRunner().invoke(consumer_command, ["--port", "0", "--secret", "whsec_"])
    assert result.exit_code != 0
    assert "secret" in result.output


@pytest.mark.integration
def test_real_process_verifies_and_records():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "devtools.consumer", "--port", "0", "--secret", SECRET_A]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
        reader.start()
        reader.join(WAIT_SECONDS)
        match = re.fullmatch(r"consumer listening on (http://\S+)\n", lines[0] if lines else "")
        assert match, lines
        url = match.group(1)
        body, headers = signed(event())
        assert requests.post(f"{url}/hooks/acme", data=body, headers=headers, timeout=5).ok
        recorded = requests.get(f"{url}/_consumer/events?name=acme", timeout=5).json()
        assert [e["verified"] for e in recorded] == [True]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(WAIT_SECONDS) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT_SECONDS)
            process.stdout.close()
