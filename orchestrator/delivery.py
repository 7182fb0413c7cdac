"""Downstream delivery of job events, as Svix does it.

Events are written to the outbox by the state machine in the same step as the transition that
causes them, so each exists once per job and type, with a stable ``evt_`` id that is the
``webhook-id`` of every attempt. Attempts follow the retry schedule (data, from the settings);
waits live in the ``due:delivery`` sorted set that beat drains, not in Celery ETAs.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from orchestrator import clock, keys
from orchestrator.jobs import render
from orchestrator.pixazo import retry_after_seconds
from orchestrator.services import Services
from orchestrator.urls import UnsafeUrl, check_consumer_url

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, SKIPPED = "pending", "delivered", "dead", "skipped"
SETTLED = (DELIVERED, DEAD, SKIPPED)
RESPONSE_EXCERPT_BYTES = 1024
JITTER = 0.2  # +-20% around each scheduled delay
ORDER_WAIT_SECONDS = 1.0  # an event waiting for an earlier one of its job checks back this soon
LOCK_SECONDS = 60  # longer than one attempt's timeout
USER_AGENT = "pixazo-orchestrator-webhooks/1"
_RETRY_AFTER_CODES = (429, 503)


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


def event_body(evt: dict[str, str]) -> dict[str, Any]:
    """The event as the consumer receives it: the job object frozen when the event was made."""
    return {
        "id": evt["id"],
        "type": evt["type"],
        "created_at": evt["created_at"],
        "data": render(json.loads(evt["snapshot"])),
    }


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: datetime, payload: str) -> str:
    """Standard Webhooks signatures, one per live secret, so rotation never breaks a consumer."""
    return " ".join(Webhook(s).sign(msg_id, timestamp, payload) for s in secrets)


def _get_event(svc: Services, event_id: str) -> dict[str, str] | None:
    data = svc.redis.hgetall(keys.event(event_id))
    return dict(data) if data else None


def _earlier_pending(svc: Services, evt: dict[str, str]) -> bool:
    """Events of one job reach the consumer in the order they were made."""
    mine = int(evt.get("seq") or 0)
    for other_id in svc.redis.hvals(keys.job_events(evt["job_id"])):
        if other_id == evt["id"]:
            continue
        other = svc.redis.hmget(keys.event(other_id), "seq", "state")
        if other[0] is not None and int(other[0]) < mine and other[1] not in SETTLED:
            return True
    return False


def endpoint_for(svc: Services, evt: dict[str, str]) -> tuple[str | None, tuple[str, ...]]:
    snapshot = json.loads(evt["snapshot"])
    client = svc.clients.get(evt["client_id"])
    if client is None:
        return None, ()
    url = snapshot.get("callback_url") or client.callback_url
    if not snapshot.get("callback_url") and client.endpoint_disabled:
        return None, ()
    return url, client.webhook_secrets


def post(svc: Services, url: str, evt: dict[str, str], secrets: tuple[str, ...]) -> Attempt:
    payload = json.dumps(event_body(evt), separators=(",", ":"))
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": evt["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets, evt["id"], now, payload),
    }
    started = time.monotonic()
    try:
        check_consumer_url(url, svc.settings.allow_http)
        answer = requests.post(
            url,
            data=payload.encode(),
            headers=headers,
            timeout=svc.settings.delivery_timeout_seconds,
            allow_redirects=False,
        )
    except UnsafeUrl as exc:
        return Attempt(None, 0, "", f"refused: {exc}")
    except requests.RequestException as exc:
        latency = int((time.monotonic() - started) * 1000)
        return Attempt(None, latency, "", type(exc).__name__)
    latency = int((time.monotonic() - started) * 1000)
    text = answer.content[:RESPONSE_EXCERPT_BYTES].decode("utf-8", "replace")
    after = None
    if answer.status_code in _RETRY_AFTER_CODES:
        after = retry_after_seconds(answer.headers.get("Retry-After"))
    return Attempt(answer.status_code, latency, text, retry_after=after)


def next_delay(schedule: tuple[int, ...], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted."""
    if attempts >= len(schedule):
        return None
    base = schedule[attempts]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    return max(delay, retry_after or 0.0)


def deliver(svc: Services, event_id: str) -> str:
    """One attempt of ``event_id`` if it is due; returns a word for logs and tests."""
    evt = _get_event(svc, event_id)
    if evt is None or evt.get("state") != PENDING:
        return "skipped"
    due = svc.redis.zscore(keys.DUE_DELIVERY, event_id)
    now = clock.now()
    if due is None or due > now + 1:
        return "not_due"
    lock = f"lock:delivery:{event_id}"
    if not svc.redis.set(lock, "1", nx=True, ex=LOCK_SECONDS):
        return "locked"
    try:
        return _attempt(svc, evt, now)
    finally:
        svc.redis.delete(lock)


def _attempt(svc: Services, evt: dict[str, str], now: float) -> str:
    if _earlier_pending(svc, evt):
        svc.redis.zadd(keys.DUE_DELIVERY, {evt["id"]: now + ORDER_WAIT_SECONDS})
        return "waiting"
    url, secrets = endpoint_for(svc, evt)
    if not url or not secrets:
        _settle(svc, evt, SKIPPED, "no endpoint")
        return SKIPPED
    attempt = post(svc, url, evt, secrets)
    number = int(svc.redis.hincrby(keys.event(evt["id"]), "attempts", 1))
    _record(svc, evt, number, url, attempt)
    if attempt.ok:
        _settle(svc, evt, DELIVERED, f"{attempt.status_code}")
        return DELIVERED
    if attempt.status_code == 410:
        if url != json.loads(evt["snapshot"]).get("callback_url"):
            svc.clients.update(evt["client_id"], endpoint_disabled=True)
        _dead_letter(svc, evt, "410 Gone: endpoint disabled")
        return DEAD
    delay = next_delay(svc.settings.delivery_retry_schedule, number, attempt.retry_after)
    if delay is None:
        _dead_letter(svc, evt, "retry schedule exhausted")
        return DEAD
    svc.redis.zadd(keys.DUE_DELIVERY, {evt["id"]: now + delay})
    svc.redis.hset(keys.event(evt["id"]), "next_attempt_at", clock.iso(now + delay))
    return "retry"


def _record(svc: Services, evt: dict[str, str], number: int, url: str, attempt: Attempt) -> None:
    entry = {
        "type": "delivery_attempt",
        "event_id": evt["id"],
        "event_type": evt["type"],
        "attempt": number,
        "url": url,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response": attempt.response,
        "error": attempt.error,
        "retry_after": attempt.retry_after,
    }
    svc.jobs.append_timeline(evt["job_id"], entry)
    svc.redis.rpush(f"{keys.event(evt['id'])}:attempts", json.dumps({"at": clock.iso(), **entry}))


def _settle(svc: Services, evt: dict[str, str], state: str, note: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt["id"]), mapping={"state": state, "settled_at": clock.iso(), "note": note}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt["id"])
    pipe.zrem(keys.DEAD_DELIVERIES, evt["id"])
    for key in (keys.event(evt["id"]), f"{keys.event(evt['id'])}:attempts"):
        pipe.expire(key, svc.retention_seconds)
    pipe.execute()


def _dead_letter(svc: Services, evt: dict[str, str], note: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt["id"]), mapping={"state": DEAD, "settled_at": clock.iso(), "note": note}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt["id"])
    pipe.zadd(keys.DEAD_DELIVERIES, {evt["id"]: clock.now()})
    pipe.execute()
    svc.jobs.append_timeline(
        evt["job_id"], {"type": "dead_lettered", "event_id": evt["id"], "reason": note}
    )
    log.warning("event %s dead-lettered: %s", evt["id"], note)


def replay(svc: Services, event_id: str) -> bool:
    """Put a dead-lettered (or delivered) event back in the queue, due now, with fresh attempts."""
    evt = _get_event(svc, event_id)
    if evt is None:
        return False
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(keys.event(event_id), mapping={"state": PENDING, "attempts": "0"})
    pipe.zrem(keys.DEAD_DELIVERIES, event_id)
    pipe.zadd(keys.DUE_DELIVERY, {event_id: clock.now()})
    pipe.persist(keys.event(event_id))
    pipe.execute()
    svc.jobs.append_timeline(evt["job_id"], {"type": "replay", "event_id": event_id})
    return True
