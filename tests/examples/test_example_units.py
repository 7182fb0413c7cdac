"""The examples' own logic without processes: the client waits what Retry-After says on 429/503
and retries a create with the same Idempotency-Key, backs off between polls, and reads errors by
the error shape; the receiver verifies, handles an event id once and refuses a tampered body."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from examples import client, receiver

SECRET = "whsec_" + "c2VjcmV0IGZvciB0aGUgZXhhbXBsZSB0ZXN0cyEhIQ=="


class Answer(requests.Response):
    def __init__(self, status: int, body: Any, **headers: str) -> None:
        super().__init__()
        self.status_code = status
        self._content = json.dumps(body).encode()
        self.headers.update(headers)


class StubSession:
    """Hands out the given answers in order and records each request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.sent.append((method, url, kwargs))
        return self.answers.pop(0)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(client.time, "sleep", slept.append)
    return slept


def job(status: str) -> dict[str, Any]:
    return {"id": "job_1", "status": status}


def test_create_retries_429_and_503_after_retry_after_with_the_same_key(sleeps):
    session = StubSession(
        Answer(503, {"error": {"code": "unavailable"}}, **{"Retry-After": "1"}),
        Answer(429, {"error": {"code": "rate_limited"}}, **{"Retry-After": "7"}),
        Answer(202, job("queued")),
    )
    made = client.create_job(session, "http://api", "pixverse", {"prompt": "x"}, "order-1")
    assert made == job("queued")
    assert sleeps == [1.0, 7.0]
    keys = [kwargs["headers"]["Idempotency-Key"] for _, _, kwargs in session.sent]
    assert keys == ["order-1"] * 3
    assert all(kwargs["timeout"] == client.REQUEST_TIMEOUT for _, _, kwargs in session.sent)


def test_retry_after_is_capped_and_a_missing_one_falls_back_to_backoff(sleeps):
    session = StubSession(
        Answer(503, {}, **{"Retry-After": "3600"}),
        Answer(503, {}),
        Answer(200, job("queued")),
    )
    client.call(session, "GET", "http://api/v1/jobs/job_1")
    assert sleeps == [client.MAX_RETRY_AFTER, client.FIRST_POLL_DELAY * 2]


def test_errors_are_read_by_the_error_shape(sleeps):
    details = {"input.duration": "Not a valid integer."}
    body = {"error": {"code": "validation_error", "message": "invalid", "details": details}}
    with pytest.raises(client.ApiError) as caught:
        client.call(StubSession(Answer(422, body)), "POST", "http://api/v1/jobs")
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        422,
        "validation_error",
        details,
    )
    assert sleeps == []


def test_wait_polls_with_doubling_backoff_until_terminal(sleeps):
    answers = [Answer(200, job(s)) for s in ("queued", "submitted", "processing", "completed")]
    done = client.wait_for_job(StubSession(*answers), "http://api", "job_1", timeout=600)
    assert done["status"] == "completed"
    assert sleeps == [1.0, 2.0, 4.0]


def signed_post(http, body: str, secret: str = SECRET, event_id: str = "evt_1"):
    now = datetime.now(tz=UTC)
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, now, body),
    }
    return lambda data=body: http.post("/webhooks", data=data, headers=headers)


def test_receiver_verifies_handles_an_event_once_and_refuses_tampering(capsys):
    http = receiver.create_app(SECRET).test_client()
    event = {"id": "evt_1", "type": "job.completed", "data": job("completed")}
    body = json.dumps(event)
    post = signed_post(http, body)
    assert post().status_code == 200
    assert post().status_code == 200  # the same event again: answered, not handled again
    assert post(body.replace("completed", "failed")).status_code == 400
    assert http.post("/webhooks", data=body).status_code == 400  # no signature headers
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["outcome"] for line in lines] == ["verified", "duplicate", "rejected", "rejected"]
    assert lines[0]["job_id"] == "job_1" and lines[0]["type"] == "job.completed"
