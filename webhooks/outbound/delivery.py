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

Every attempt has a wall-clock deadline (``delivery_timeout_seconds``, headers and body): a
watchdog shuts the socket when it is spent, since urllib3's timeouts are per read and a consumer
sending one byte at a time would otherwise hold an attempt for as long as it likes. The event's
lock and the endpoint lease are held for that deadline plus a margin, so neither lapses while the
attempt runs, and a re-send from beat finds the event in flight instead of sending it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import secrets as random_tokens
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast

import certifi
import urllib3
from redis.commands.core import Script
from standardwebhooks.webhooks import Webhook
from urllib3.util.ssl_match_hostname import CertificateError

from orchestrator.core import clock, keys, lua
from orchestrator.core.records import Event
from orchestrator.core.urls import Target, UnsafeUrl, pinned_target, safe_url
from orchestrator.jobs.store import render
from orchestrator.services import Services
from orchestrator.upstream.pixazo import retry_after_seconds

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD, SKIPPED = "pending", "delivered", "dead", "skipped"
SETTLED = (DELIVERED, DEAD, SKIPPED)
RESPONSE_EXCERPT_BYTES = 1024
JITTER = 0.2  # +-20% around each scheduled delay
ORDER_WAIT_SECONDS = 1.0  # an event waiting for an earlier one of its job checks back this soon
USER_AGENT = "pixazo-orchestrator-webhooks/1"
_RETRY_AFTER_CODES = (429, 503)
GONE = 410
ENDPOINT_MAX_IN_FLIGHT = 4  # requests one endpoint may have open at once, across all workers
CONNECT_TIMEOUT_SECONDS = 5.0  # TCP connect, and the TLS handshake, each at most this long
# The event lock and the endpoint lease outlive an attempt's deadline by this much: name
# resolution (not under the deadline) and the bookkeeping after the answer fit in it.
HOLD_MARGIN_SECONDS = 30.0
DEFER_BASE_SECONDS = 0.5  # first back-off of an attempt deferred by a full endpoint
DEFER_MAX_SECONDS = 15.0
BULK_REPLAY_BATCH = 500
LEASE_TAKEN, LEASE_FULL, LEASE_IN_FLIGHT = 1, 0, -1
_TLS_ERRORS = (ssl.SSLError, urllib3.exceptions.SSLError, CertificateError)


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


def event_body(evt: Event | Mapping[str, str]) -> dict[str, Any]:
    """The event as the consumer receives it: the job object frozen when the event was made."""
    if not isinstance(evt, Event):
        evt = Event.from_hash(evt)
    return {
        "id": evt.id,
        "type": evt.type,
        "created_at": evt.created_at,
        "data": render(evt.snapshot),
    }


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: datetime, payload: str) -> str:
    """Standard Webhooks signatures, one per live secret, so rotation never breaks a consumer."""
    return " ".join(Webhook(s).sign(msg_id, timestamp, payload) for s in secrets)


def _get_event(svc: Services, event_id: str) -> Event | None:
    data = cast("dict[str, str]", svc.redis.hgetall(keys.event(event_id)))
    return Event.from_hash(data) if data else None


def _earlier_pending(svc: Services, evt: Event) -> bool:
    """Events of one job reach the consumer in the order they were made."""
    for other_id in cast("list[str]", svc.redis.hvals(keys.job_events(evt.job_id))):
        if other_id == evt.id:
            continue
        other = svc.redis.hmget(keys.event(other_id), "seq", "state")
        if other[0] is not None and int(other[0]) < evt.seq and other[1] not in SETTLED:
            return True
    return False


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    secrets: tuple[str, ...]
    problem: str = ""  # why there is nothing to send to
    disabled: bool = False  # the endpoint answered 410 Gone earlier: dead-letter, keep for replay


def endpoint_for(svc: Services, evt: Event) -> Endpoint:
    """The job's own callback_url, else the client's endpoint (as registered now)."""
    client = svc.clients.get(evt.client_id)
    if client is None:
        return Endpoint(None, (), "client deleted")
    if evt.type not in client.event_types:
        return Endpoint(None, (), f"client does not subscribe to {evt.type}")
    own = evt.snapshot.get("callback_url") or None
    if own:
        return Endpoint(own, client.webhook_secrets)
    if not client.callback_url:
        return Endpoint(None, (), "no endpoint registered")
    if client.endpoint_disabled:
        return Endpoint(client.callback_url, (), "endpoint disabled (410 Gone)", disabled=True)
    return Endpoint(client.callback_url, client.webhook_secrets)


def _connection(target: Target, connect_timeout: float) -> urllib3.connection.HTTPConnection:
    """A connection to the checked address only; the name is kept for SNI and the certificate."""
    if target.scheme == "https":
        return urllib3.connection.HTTPSConnection(
            target.address,
            target.port,
            timeout=connect_timeout,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.connection.HTTPConnection(target.address, target.port, timeout=connect_timeout)


class Deadline:
    """Shuts a connection's socket once ``seconds`` have passed, whatever it is waiting for.

    A per-read timeout restarts with every byte; this one does not. Used as a context manager:
    leaving it disarms the watchdog before the caller closes the socket, so a late firing can
    never shut a descriptor that has since been reused.
    """

    def __init__(self, conn: urllib3.connection.HTTPConnection, seconds: float) -> None:
        self._conn = conn
        self._ends = time.monotonic() + seconds
        self._guard = threading.Lock()
        self._armed = True
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self._ends - time.monotonic())

    def _expire(self) -> None:
        with self._guard:
            if not self._armed:
                return
            self.expired = True
            sock = self._conn.sock
            if sock is not None:
                # The plain socket's shutdown: an SSL wrapper's own would touch its state.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._guard:
            self._armed = False
            self._timer.cancel()


def _error_name(exc: Exception) -> str:
    """The failure's class name for the timeline; every TLS failure says ``SSLError``."""
    name = type(exc).__name__
    if isinstance(exc, _TLS_ERRORS) and "SSL" not in name:
        return f"SSLError: {name}"
    return name


def _deadline_error(timeout: float) -> str:
    return f"Timeout: no complete answer within the {timeout:g} s deadline"


def _read_excerpt(answer: urllib3.BaseHTTPResponse, deadline: Deadline) -> bytes:
    """Up to the first 1 KB of the body; what arrived before the deadline is kept."""
    excerpt = b""
    try:
        while len(excerpt) < RESPONSE_EXCERPT_BYTES and not deadline.expired:
            chunk = answer.read1(RESPONSE_EXCERPT_BYTES - len(excerpt))
            if not chunk:
                break
            excerpt += chunk
    except (urllib3.exceptions.HTTPError, OSError):
        pass  # the status line decides; a body cut short is only a shorter excerpt
    return excerpt


def send(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """One POST without redirects, all of it (connect, headers, body) within ``timeout`` seconds
    of wall-clock time; reads at most the first 1 KB of the answer. Never raises."""
    started = time.monotonic()
    conn = _connection(target, min(CONNECT_TIMEOUT_SECONDS, timeout))
    try:
        with Deadline(conn, timeout) as deadline:
            try:
                return _exchange(conn, target, body, headers, deadline)
            except Exception as exc:  # any failure is a failed attempt
                error = _deadline_error(timeout) if deadline.expired else _error_name(exc)
                return Attempt(None, _ms_since(started), "", error)
    finally:
        conn.close()


def _exchange(
    conn: urllib3.connection.HTTPConnection,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    deadline: Deadline,
) -> Attempt:
    started = time.monotonic()
    conn.connect()
    if deadline.expired or conn.sock is None:
        raise TimeoutError("connect outlived the deadline")
    # The connect timeout is done with: urllib3 puts ``conn.timeout`` back on the socket when
    # it reads the answer, so from here on it is what is left of the deadline.
    conn.timeout = max(deadline.remaining(), 0.001)
    conn.sock.settimeout(conn.timeout)
    conn.request(
        "POST",
        target.path,
        body=body,
        headers={**headers, "Host": target.host_header},
        preload_content=False,
    )
    answer = conn.getresponse()
    if deadline.expired:  # a socket shut mid-headers reads as their end: not an answer
        raise TimeoutError("headers outlived the deadline")
    excerpt = _read_excerpt(answer, deadline)
    after = None
    if answer.status in _RETRY_AFTER_CODES:
        after = retry_after_seconds(answer.headers.get("Retry-After"))
    text = excerpt.decode("utf-8", "replace")
    error = "body cut off at the deadline" if deadline.expired else ""
    return Attempt(answer.status, _ms_since(started), text, error, retry_after=after)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def post(svc: Services, url: str, evt: Event, secrets: tuple[str, ...]) -> Attempt:
    """Sign and send ``evt`` to ``url``, resolving and checking the host now (SSRF guard)."""
    payload = json.dumps(event_body(evt), separators=(",", ":"))
    now = datetime.now(tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": evt.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets, evt.id, now, payload),
    }
    try:
        target = pinned_target(url, svc.settings.allow_http)
    except UnsafeUrl as exc:
        return Attempt(None, 0, "", f"refused: {exc}")
    return send(target, payload.encode(), headers, svc.settings.delivery_timeout_seconds)


def _safe_post(svc: Services, url: str, evt: Event, secrets: tuple[str, ...]) -> Attempt:
    """``post``, where anything that goes wrong is a failed attempt (on the timeline, retried
    on the schedule), never a crashed task that beat would re-send forever."""
    started = time.monotonic()
    try:
        return post(svc, url, evt, secrets)
    except Exception as exc:  # see the docstring
        log.exception("delivery attempt of %s failed unexpectedly", evt.id)
        return Attempt(None, _ms_since(started), "", f"{type(exc).__name__}: {exc}"[:200])


def next_delay(schedule: tuple[int, ...], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted."""
    if attempts >= len(schedule):
        return None
    base = schedule[attempts]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    return max(delay, retry_after or 0.0)


def endpoint_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def hold_seconds(svc: Services) -> float:
    """How long an attempt's lock and lease last: past its deadline, whatever the setting."""
    return svc.settings.delivery_timeout_seconds + HOLD_MARGIN_SECONDS


# Each script is registered once per process: a Script keeps its SHA and runs EVALSHA on the
# connection it is given, loading the text on that server only when it does not know it yet.
_SCRIPTS: dict[str, Script] = {}


def _script(svc: Services, name: str, keys_: list[str], args: list[Any]) -> Any:
    """Run ``lua/<name>.lua`` on the services' connection."""
    script = _SCRIPTS.get(name)
    if script is None:
        script = _SCRIPTS.setdefault(name, svc.redis.register_script(lua.source(name)))
    return script(keys=keys_, args=args, client=svc.redis)


def _lease(svc: Services, url: str, event_id: str) -> tuple[int, float]:
    """(LEASE_TAKEN, FULL or IN_FLIGHT, when the lease lapses) for one attempt to ``url``."""
    now = clock.now()
    lapse = now + hold_seconds(svc)
    args = [repr(now), repr(lapse), event_id, ENDPOINT_MAX_IN_FLIGHT, int(hold_seconds(svc)) + 1]
    taken = _script(svc, "endpoint_lease", [keys.endpoint_in_flight(endpoint_hash(url))], args)
    return int(taken), lapse


def _release(svc: Services, url: str, event_id: str, lapse: float) -> None:
    key = keys.endpoint_in_flight(endpoint_hash(url))
    _script(svc, "endpoint_release", [key], [event_id, repr(lapse)])


def deliver(svc: Services, event_id: str) -> str:
    """One attempt of ``event_id`` if it is due; returns a word for logs and tests."""
    waiting = _wait_reason(svc, _get_event(svc, event_id), event_id, clock.now())
    if waiting:
        return waiting
    lock = keys.delivery_lock(event_id)
    token = random_tokens.token_hex(8)
    if not svc.redis.set(lock, token, nx=True, ex=int(hold_seconds(svc)) + 1):
        return "locked"
    try:
        evt = _get_event(svc, event_id)  # again: another delivery may have settled it meanwhile
        now = clock.now()
        waiting = _wait_reason(svc, evt, event_id, now)
        if waiting or evt is None:
            return waiting or "skipped"
        return _attempt(svc, evt, now)
    finally:
        _script(svc, "delivery_unlock", [lock], [token])


def _wait_reason(svc: Services, evt: Event | None, event_id: str, now: float) -> str:
    """Why nothing may be sent now ("skipped": gone or settled, "not_due"), or ""."""
    if evt is None:
        svc.redis.zrem(keys.DUE_DELIVERY, event_id)  # expired with its job
        return "skipped"
    if evt.state != PENDING:
        return "skipped"
    due_at = evt.due_at or 0.0
    if due_at > now:
        svc.redis.zadd(keys.DUE_DELIVERY, {event_id: due_at})
        return "not_due"
    return ""


def _reschedule(svc: Services, evt: Event, at: float, **fields: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    changes: dict[Any, str] = {"due_at": repr(at), **fields}
    pipe.hset(keys.event(evt.id), mapping=changes)
    pipe.zadd(keys.DUE_DELIVERY, {evt.id: at})
    pipe.execute()


def _defer(svc: Services, evt: Event, now: float) -> None:
    """The endpoint is at its in-flight cap: try later, without spending an attempt."""
    deferrals = evt.deferrals
    delay = min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2**deferrals)
    delay *= random.uniform(1 - JITTER, 1 + JITTER)
    _reschedule(svc, evt, now + delay, deferrals=str(deferrals + 1))


def _attempt(svc: Services, evt: Event, now: float) -> str:
    if _earlier_pending(svc, evt):
        svc.redis.zadd(keys.DUE_DELIVERY, {evt.id: now + ORDER_WAIT_SECONDS})
        return "waiting"
    endpoint = endpoint_for(svc, evt)
    if endpoint.disabled:
        _dead_letter(svc, evt, endpoint.problem)
        return DEAD
    if not endpoint.url or not endpoint.secrets:
        _settle(svc, evt, SKIPPED, endpoint.problem or "no signing secret")
        return SKIPPED
    url = endpoint.url
    taken, lapse = _lease(svc, url, evt.id)
    if taken == LEASE_IN_FLIGHT:
        return "in_flight"  # that attempt settles or reschedules the event when it ends
    if taken == LEASE_FULL:
        _defer(svc, evt, now)
        return "deferred"
    try:
        attempt = _safe_post(svc, url, evt, endpoint.secrets)
    finally:
        _release(svc, url, evt.id, lapse)
    return _conclude(svc, evt, url, attempt)


def _conclude(svc: Services, evt: Event, url: str, attempt: Attempt) -> str:
    """Record the attempt and settle or reschedule the event by its outcome."""
    finished = clock.now()  # waits count from the answer, so Retry-After is never cut short
    number = int(svc.redis.hincrby(keys.event(evt.id), "attempts", 1))
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


def _note(svc: Services, job_id: str, entry: dict[str, Any]) -> None:
    """Append to a job's timeline only while the job is kept: never a timeline without a TTL."""
    svc.redis.rpushx(keys.timeline(job_id), json.dumps({"at": clock.iso(), **entry}))


def _gone(svc: Services, evt: Event, url: str) -> str:
    """410 Gone: stop sending there. A client's endpoint is disabled until re-enabled."""
    client = svc.clients.get(evt.client_id)
    if client is not None and url == client.callback_url:
        svc.clients.update(evt.client_id, endpoint_disabled=True)
        _note(
            svc,
            evt.job_id,
            {"type": "endpoint_disabled", "event_id": evt.id, "url": safe_url(url)},
        )
    _dead_letter(svc, evt, "410 Gone: endpoint disabled")
    return DEAD


def _record(svc: Services, evt: Event, number: int, url: str, attempt: Attempt) -> None:
    """The attempt on the job's timeline and the event's own list; the URL without its query,
    which often carries the consumer's token."""
    entry = {
        "type": "delivery_attempt",
        "event_id": evt.id,
        "event_type": evt.type,
        "attempt": number,
        "url": safe_url(url),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "response": attempt.response,
        "error": attempt.error,
        "retry_after": attempt.retry_after,
    }
    _note(svc, evt.job_id, entry)
    svc.redis.rpush(keys.event_attempts(evt.id), json.dumps({"at": clock.iso(), **entry}))


def _settle(svc: Services, evt: Event, state: str, note: str) -> None:
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(keys.event(evt.id), mapping={"state": state, "settled_at": clock.iso(), "note": note})
    pipe.zrem(keys.DUE_DELIVERY, evt.id)
    pipe.zrem(keys.DEAD_DELIVERIES, evt.id)
    pipe.zrem(keys.client_dead_deliveries(evt.client_id), evt.id)
    for key in (keys.event(evt.id), keys.event_attempts(evt.id)):
        pipe.expire(key, svc.retention_seconds)
    pipe.execute()


def _dead_letter(svc: Services, evt: Event, note: str) -> None:
    now = clock.now()
    pipe = svc.redis.pipeline(transaction=True)
    pipe.hset(
        keys.event(evt.id), mapping={"state": DEAD, "settled_at": clock.iso(now), "note": note}
    )
    pipe.zrem(keys.DUE_DELIVERY, evt.id)
    pipe.zadd(keys.DEAD_DELIVERIES, {evt.id: now})
    client_dead = keys.client_dead_deliveries(evt.client_id)
    pipe.zadd(client_dead, {evt.id: now})
    pipe.zremrangebyscore(client_dead, "-inf", f"({now - svc.retention_seconds}")
    for key in (keys.event(evt.id), keys.event_attempts(evt.id)):
        pipe.expire(key, svc.retention_seconds)  # replayable as long as the job is kept
    pipe.execute()
    _note(svc, evt.job_id, {"type": "dead_lettered", "event_id": evt.id, "reason": note})
    log.warning("event %s dead-lettered: %s", evt.id, note)


def replay(svc: Services, event_id: str) -> bool:
    """Put a dead-lettered (or delivered) event back in the queue, due now, with fresh attempts.

    Refused (False) once its job has expired: the replay would re-create keys the retention
    already let go. The event keeps a TTL while pending again; settling renews it.
    """
    evt = _get_event(svc, event_id)
    if evt is None:
        return False
    entry = json.dumps({"at": clock.iso(), "type": "replay", "event_id": event_id})
    replay_keys = [
        keys.event(event_id),
        keys.event_attempts(event_id),
        keys.job(evt.job_id),
        keys.timeline(evt.job_id),
        keys.DUE_DELIVERY,
        keys.DEAD_DELIVERIES,
        keys.client_dead_deliveries(evt.client_id),
    ]
    args = [event_id, repr(clock.now()), svc.retention_seconds, entry]
    return bool(_script(svc, "event_replay", replay_keys, args))


def dead_since(svc: Services, client_id: str, since: float) -> list[str]:
    """Ids of ``client_id``'s events dead-lettered at or after ``since``, oldest first."""
    found: list[str] = []
    index = keys.client_dead_deliveries(client_id)
    while True:
        batch = cast(
            "list[str]",
            svc.redis.zrangebyscore(index, since, "+inf", start=len(found), num=BULK_REPLAY_BATCH),
        )
        found.extend(batch)
        if len(batch) < BULK_REPLAY_BATCH:
            return found
