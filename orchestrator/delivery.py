"""Downstream delivery of job events, as Svix does it.

Events are written to the outbox by the state machine in the same step as the transition that
causes them, so each exists once per job and type, with a stable ``evt_`` id that is the
``webhook-id`` of every attempt. Attempts follow the retry schedule (data, from the settings);
waits live in the ``due:delivery`` sorted set that beat drains, not in Celery ETAs. The event
hash holds the authoritative ``due_at``: beat's claim pushes the set's score ahead, so the score
alone cannot say whether an attempt is allowed yet (a ``Retry-After`` must never be cut short).

Isolation: each endpoint may have at most ``ENDPOINT_MAX_IN_FLIGHT`` requests in flight across
all workers (a Redis sorted set of leases). An attempt over the cap does not send and does not
count; it is deferred with a growing back-off, so a slow or dead consumer holds at most that
many worker slots and never the whole delivery pool.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets as random_tokens
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import certifi
import urllib3
from standardwebhooks.webhooks import Webhook

from orchestrator import clock, keys
from orchestrator.jobs import render
from orchestrator.pixazo import retry_after_seconds
from orchestrator.services import Services
from orchestrator.urls import Target, UnsafeUrl, pinned_target

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, SKIPPED = "pending", "delivered", "dead", "skipped"
SETTLED = (DELIVERED, DEAD, SKIPPED)
RESPONSE_EXCERPT_BYTES = 1024
JITTER = 0.2  # +-20% around each scheduled delay
ORDER_WAIT_SECONDS = 1.0  # an event waiting for an earlier one of its job checks back this soon
LOCK_SECONDS = 60  # longer than one attempt's timeout
USER_AGENT = "pixazo-orchestrator-webhooks/1"
_RETRY_AFTER_CODES = (429, 503)
GONE = 410
ENDPOINT_MAX_IN_FLIGHT = 4  # requests one endpoint may have open at once, across all workers
LEASE_MARGIN_SECONDS = 30.0  # a lease of a killed worker lapses this long after its timeout
DEFER_BASE_SECONDS = 0.5  # first back-off of an attempt deferred by a full endpoint
DEFER_MAX_SECONDS = 15.0
BULK_REPLAY_BATCH = 500

# Take one in-flight lease for an endpoint unless it already has ARGV[4] live ones.
_LEASE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) == false and
   redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


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


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    secrets: tuple[str, ...]
    problem: str = ""  # why there is nothing to send to
    disabled: bool = False  # the endpoint answered 410 Gone earlier: dead-letter, keep for replay


def endpoint_for(svc: Services, evt: dict[str, str]) -> Endpoint:
    """The job's own callback_url, else the client's endpoint (as registered now)."""
    snapshot = json.loads(evt["snapshot"])
    client = svc.clients.get(evt["client_id"])
    if client is None:
        return Endpoint(None, (), "client deleted")
    if evt["type"] not in client.event_types:
        return Endpoint(None, (), f"client does not subscribe to {evt['type']}")
    own = snapshot.get("callback_url") or None
    if own:
        return Endpoint(own, client.webhook_secrets)
    if not client.callback_url:
        return Endpoint(None, (), "no endpoint registered")
    if client.endpoint_disabled:
        return Endpoint(client.callback_url, (), "endpoint disabled (410 Gone)", disabled=True)
    return Endpoint(client.callback_url, client.webhook_secrets)


def _pool(target: Target, timeout: float) -> urllib3.HTTPConnectionPool:
    """A pool that connects to the checked address only; the name is kept for TLS."""
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=limits,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(
        target.address, target.port, timeout=limits, maxsize=1, retries=False
    )


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """One POST without redirects; reads at most the first 1 KB of the answer."""
    started = time.monotonic()
    pool = _pool(target, timeout)
    try:
        answer = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            excerpt = answer.read(RESPONSE_EXCERPT_BYTES)
        finally:
            answer.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Attempt(None, _ms_since(started), "", type(exc).__name__)
    finally:
        pool.close()
    after = None
    if answer.status in _RETRY_AFTER_CODES:
        after = retry_after_seconds(answer.headers.get("Retry-After"))
    text = excerpt.decode("utf-8", "replace")
    return Attempt(answer.status, _ms_since(started), text, retry_after=after)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def post(svc: Services, url: str, evt: dict[str, str], secrets: tuple[str, ...]) -> Attempt:
    """Sign and send ``evt`` to ``url``, resolving and checking the host now (SSRF guard)."""
    payload = json.dumps(event_body(evt), separators=(",", ":"))
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": evt["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets, evt["id"], now, payload),
    }
    try:
        target = pinned_target(url, svc.settings.allow_http)
    except UnsafeUrl as exc:
        return Attempt(None, 0, "", f"refused: {exc}")
    return send(target, payload.encode(), headers, svc.settings.delivery_timeout_seconds)


def next_delay(schedule: tuple[int, ...], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted."""
    if attempts >= len(schedule):
        return None
    base = schedule[attempts]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    return max(delay, retry_after or 0.0)


def endpoint_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def _lease(svc: Services, url: str, event_id: str, now: float) -> bool:
    timeout = svc.settings.delivery_timeout_seconds
    lapse = now + timeout + LEASE_MARGIN_SECONDS
    return bool(
        svc.redis.eval(
            _LEASE_LUA,
            1,
            keys.endpoint_in_flight(endpoint_hash(url)),
            repr(now),
            repr(lapse),
            event_id,
            ENDPOINT_MAX_IN_FLIGHT,
            int(timeout + LEASE_MARGIN_SECONDS) + 1,
        )
    )


def _release(svc: Services, url: str, event_id: str) -> None:
    svc.redis.zrem(keys.endpoint_in_flight(endpoint_hash(url)), event_id)


def deliver(svc: Services, event_id: str) -> str:
    """One attempt of ``event_id`` if it is due; returns a word for logs and tests."""
    evt = _get_event(svc, event_id)
    if evt is None:
        svc.redis.zrem(keys.DUE_DELIVERY, event_id)  # expired with its job
        return "skipped"
    if evt.get("state") != PENDING:
        return "skipped"
    now = clock.now()
    due_at = float(evt.get("due_at") or 0.0)
    if due_at > now:
        svc.redis.zadd(keys.DUE_DELIVERY, {event_id: due_at})
        return "not_due"
    lock = f"lock:delivery:{event_id}"
    token = random_tokens.token_hex(8)
    if not svc.redis.set(lock, token, nx=True, ex=LOCK_SECONDS):
        return "locked"
    try:
        return _attempt(svc, evt, now)
    finally:
        if svc.redis.get(lock) == token:
            svc.redis.delete(lock)


def _reschedule(svc: Services, evt: dict[str, str], at: float, **fields: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(keys.event(evt["id"]), mapping={"due_at": repr(at), **fields})
    pipe.zadd(keys.DUE_DELIVERY, {evt["id"]: at})
    pipe.execute()


def _defer(svc: Services, evt: dict[str, str], now: float) -> None:
    """The endpoint is at its in-flight cap: try later, without spending an attempt."""
    deferrals = int(evt.get("deferrals") or 0)
    delay = min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2**deferrals)
    delay *= random.uniform(1 - JITTER, 1 + JITTER)
    _reschedule(svc, evt, now + delay, deferrals=str(deferrals + 1))


def _attempt(svc: Services, evt: dict[str, str], now: float) -> str:
    if _earlier_pending(svc, evt):
        svc.redis.zadd(keys.DUE_DELIVERY, {evt["id"]: now + ORDER_WAIT_SECONDS})
        return "waiting"
    endpoint = endpoint_for(svc, evt)
    if endpoint.disabled:
        _dead_letter(svc, evt, endpoint.problem)
        return DEAD
    if not endpoint.url or not endpoint.secrets:
        _settle(svc, evt, SKIPPED, endpoint.problem or "no signing secret")
        return SKIPPED
    url = endpoint.url
    if not _lease(svc, url, evt["id"], now):
        _defer(svc, evt, now)
        return "deferred"
    try:
        attempt = post(svc, url, evt, endpoint.secrets)
    finally:
        _release(svc, url, evt["id"])
    finished = clock.now()  # waits count from the answer, so Retry-After is never cut short
    number = int(svc.redis.hincrby(keys.event(evt["id"]), "attempts", 1))
    _record(svc, evt, number, url, attempt)
    if attempt.ok:
        _settle(svc, evt, DELIVERED, f"{attempt.status_code}")
        return DELIVERED
    if attempt.status_code == GONE:
        return _gone(svc, evt, url)
    delay = next_delay(svc.settings.delivery_retry_schedule, number, attempt.retry_after)
    if delay is None:
        _dead_letter(svc, evt, "retry schedule exhausted")
        return DEAD
    _reschedule(
        svc, evt, finished + delay, next_attempt_at=clock.iso(finished + delay), deferrals="0"
    )
    return "retry"


def _gone(svc: Services, evt: dict[str, str], url: str) -> str:
    """410 Gone: stop sending there. A client's endpoint is disabled until re-enabled."""
    client = svc.clients.get(evt["client_id"])
    if client is not None and url == client.callback_url:
        svc.clients.update(evt["client_id"], endpoint_disabled=True)
        svc.jobs.append_timeline(
            evt["job_id"], {"type": "endpoint_disabled", "event_id": evt["id"], "url": url}
        )
    _dead_letter(svc, evt, "410 Gone: endpoint disabled")
    return DEAD


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
    pipe.zrem(keys.client_dead_deliveries(evt["client_id"]), evt["id"])
    for key in (keys.event(evt["id"]), f"{keys.event(evt['id'])}:attempts"):
        pipe.expire(key, svc.retention_seconds)
    pipe.execute()


def _dead_letter(svc: Services, evt: dict[str, str], note: str) -> None:
    now = clock.now()
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt["id"]), mapping={"state": DEAD, "settled_at": clock.iso(now), "note": note}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt["id"])
    pipe.zadd(keys.DEAD_DELIVERIES, {evt["id"]: now})
    client_dead = keys.client_dead_deliveries(evt["client_id"])
    pipe.zadd(client_dead, {evt["id"]: now})
    pipe.zremrangebyscore(client_dead, "-inf", f"({now - svc.retention_seconds}")
    for key in (keys.event(evt["id"]), f"{keys.event(evt['id'])}:attempts"):
        pipe.expire(key, svc.retention_seconds)  # replayable as long as the job is kept
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
    now = clock.now()
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(keys.event(event_id), mapping={"state": PENDING, "attempts": "0", "deferrals": "0"})
    pipe.hdel(keys.event(event_id), "due_at", "next_attempt_at")
    pipe.zrem(keys.DEAD_DELIVERIES, event_id)
    pipe.zrem(keys.client_dead_deliveries(evt["client_id"]), event_id)
    pipe.zadd(keys.DUE_DELIVERY, {event_id: now})
    pipe.persist(keys.event(event_id))
    pipe.execute()
    svc.jobs.append_timeline(evt["job_id"], {"type": "replay", "event_id": event_id})
    return True


def dead_since(svc: Services, client_id: str, since: float) -> list[str]:
    """Ids of ``client_id``'s events dead-lettered at or after ``since``, oldest first."""
    found: list[str] = []
    index = keys.client_dead_deliveries(client_id)
    while True:
        batch = svc.redis.zrangebyscore(
            index, since, "+inf", start=len(found), num=BULK_REPLAY_BATCH
        )
        found.extend(batch)
        if len(batch) < BULK_REPLAY_BATCH:
            return found
