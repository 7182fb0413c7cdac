"""Downstream events are signed so that the standardwebhooks library verifies them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orchestrator.core import keys
from orchestrator.core.clients import new_webhook_secret
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from webhooks.outbound import signing


def signed(secrets: tuple[str, ...], payload: str, msg_id: str = "evt_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signing.sign(secrets, msg_id, now, payload),
    }


def test_a_real_event_verifies(svc):
    job_id = svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id
    svc.states.transition(job_id, expected=[JobState.QUEUED], to=JobState.SUBMITTED)
    result = svc.states.transition(
        job_id,
        expected=[JobState.SUBMITTED],
        to=JobState.COMPLETED,
        emit=True,
        fields={"output": {"media_url": ["https://m/x.mp4"], "media_type": "video/mp4"}},
    )
    evt = {k: v for k, v in svc.redis.hgetall(keys.event(result.event_id)).items()}
    payload = json.dumps(signing.event_body(evt))
    secret = new_webhook_secret()
    body = Webhook(secret).verify(payload, signed((secret,), payload, result.event_id))
    assert body["id"] == result.event_id and body["type"] == "job.completed"
    assert body["data"]["id"] == job_id and body["data"]["status"] == "completed"
    assert body["data"]["output"]["media_url"] == ["https://m/x.mp4"]


def test_two_secrets_give_two_signatures_and_either_verifies():
    old, new = new_webhook_secret(), new_webhook_secret()
    payload = '{"a": 1}'
    headers = signed((new, old), payload)
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2 and all(p.startswith("v1,") for p in parts)
    assert Webhook(old).verify(payload, headers) == {"a": 1}
    assert Webhook(new).verify(payload, headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(payload, headers)


def test_tampered_payload_fails():
    secret = new_webhook_secret()
    headers = signed((secret,), '{"a": 1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a": 2}', headers)


def test_the_event_carries_the_job_warnings_and_the_gateway_result(svc):
    warning = {"field": "audio", "message": "not applied"}
    new = NewJob(
        "cli_a",
        "pixverse",
        {"resolution": "1080p", "aspect_ratio": "16:9", "duration": 5},
        {},
        None,
        None,
        "terminal",
        warnings=(warning,),
    )
    job_id = svc.jobs.create(new).job_id
    svc.states.transition(job_id, expected=[JobState.QUEUED], to=JobState.SUBMITTED)
    result = svc.states.transition(
        job_id,
        expected=[JobState.SUBMITTED],
        to=JobState.COMPLETED,
        emit=True,
        fields={"output": {"media_url": ["https://m/x.mp4"], "media_type": "video/mp4"}},
    )
    data = signing.event_body(svc.redis.hgetall(keys.event(result.event_id)))["data"]
    assert data["warnings"] == [warning] and data["job_id"] == job_id
    assert data["result"] == {"url": "https://m/x.mp4", "duration": 5, "resolution": "1920x1080"}
    assert isinstance(data["created"], int)
