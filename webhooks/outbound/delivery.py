"""One delivery attempt of a downstream event, as Svix does it: prepare -> call -> handle.

- prepare (``deliver``, ``_prepare``): load the event and check it is due (the hash's
  ``due_at`` is authoritative, see :mod:`webhooks.outbound.outbox`), take the event's lock, wait
  for an earlier event of the same job (ordering), resolve the endpoint, take an in-flight lease
  on it (:mod:`webhooks.outbound.endpoints`). Over the endpoint's cap an attempt does not send and
  does not count; it is deferred with a growing back-off, so a slow or dead consumer holds at most
  ``ENDPOINT_MAX_IN_FLIGHT`` worker slots and never the whole delivery pool.
- call (``_call``): the signed, guarded POST (:mod:`webhooks.outbound.transport`, under a
  wall-clock deadline), where anything that goes wrong is a failed attempt; the lease is released
  whatever happens.
- handle (``_handle``): record the attempt, then success (settle), 410 Gone (disable the client's
  endpoint, dead-letter) or failure: reschedule along the retry schedule (data, from the
  settings, with jitter, never sooner than a ``Retry-After``), dead-letter once it is exhausted;
  all of it, with the lease and the lock given back, in one Lua step (``outbox.finish``).

Round trips of one delivery: the event read; the lock taken with the event read again and its
client (one pipeline); the lease; the finish step; the timeline's packing when the job's last
event settles. A job's first event does not look for earlier ones.

The event's lock and the endpoint lease are held for the attempt's deadline plus a margin, so
neither lapses while the attempt runs, and a re-send from beat finds the event in flight instead
of sending it again.

The other modules of the package: ``outbox`` (event records, settle, dead letters, replay),
``signing`` (event body, Standard Webhooks signatures), ``transport`` (Attempt, the guarded
send), ``endpoints`` (endpoint resolution, in-flight leases), ``scripts`` (their Lua scripts).

Re-exported here, for the code that uses them as ``delivery.<name>`` (ops, jobs.actions, tests):
``Attempt``, ``post`` (the stage calls it through this module, so patching ``delivery.post``
replaces the transport), ``event_body``, ``sign``, ``Endpoint``, ``endpoint_for``,
``endpoint_hash``, ``hold_seconds``, ``ENDPOINT_MAX_IN_FLIGHT``, ``PENDING``, ``DELIVERED``,
``DEAD``, ``SKIPPED``, ``SETTLED``, ``get_event``, ``settle``, ``dead_letter`` (also as
``_dead_letter``), ``replay``, ``dead_since``. Transport internals (``send``,
``CONNECT_TIMEOUT_SECONDS``, ``Deadline``) are not: patch them in ``transport``.
"""

from __future__ import annotations

import logging
import random
import secrets as random_tokens
import time
from dataclasses import dataclass

from orchestrator.core import clock, keys, logcontext, metrics
from orchestrator.core.clients import Client
from orchestrator.core.due import DueSet
from orchestrator.core.records import Event
from orchestrator.core.services import Services
from orchestrator.core.urls import safe_url
from orchestrator.jobs.state import UPSTREAM_RECEIVED_AT
from webhooks.outbound.endpoints import (
    ENDPOINT_MAX_IN_FLIGHT,
    LEASE_FULL,
    LEASE_IN_FLIGHT,
    Deferral,
    Endpoint,
    endpoint_for,
    endpoint_hash,
    endpoint_of,
    hold_seconds,
    lease,
    release,
)
from webhooks.outbound.outbox import (
    DEAD,
    DELIVERED,
    PENDING,
    RETRY,
    SETTLED,
    SKIPPED,
    Sent,
    Settlement,
    compact_if_final,
    dead_letter,
    dead_since,
    earlier_pending,
    finish,
    get_event,
    load_event,
    replay,
    settle,
)
from webhooks.outbound.scripts import run_script
from webhooks.outbound.signing import event_body, sign
from webhooks.outbound.transport import Attempt, ms_since, post

__all__ = [
    "DEAD",
    "DELIVERED",
    "ENDPOINT_MAX_IN_FLIGHT",
    "PENDING",
    "SETTLED",
    "SKIPPED",
    "Attempt",
    "Endpoint",
    "dead_letter",
    "dead_since",
    "deliver",
    "endpoint_for",
    "endpoint_hash",
    "event_body",
    "get_event",
    "hold_seconds",
    "next_delay",
    "post",
    "replay",
    "settle",
    "sign",
]

log = logging.getLogger(__name__)

JITTER = 0.2  # +-20% around each scheduled delay
ORDER_WAIT_SECONDS = 1.0  # an event waiting for an earlier one of its job checks back this soon
GONE = 410
DEFER_BASE_SECONDS = 0.5  # first back-off of an attempt deferred by a full endpoint
DEFER_MAX_SECONDS = 15.0
DEFERRED = "deferred"  # the attempt found its endpoint full (and gave the event's lock back)

_dead_letter = dead_letter  # the name tests/ops/conftest.py uses


@dataclass(frozen=True)
class Prepared:
    """What the prepare stage hands to the call: where, signed with what, under which lease."""

    url: str
    secrets: tuple[str, ...]
    lapse: float  # when the endpoint lease lapses (its release names it)


# prepare ----------------------------------------------------------------------------------------


def deliver(svc: Services, event_id: str) -> str:
    """One attempt of ``event_id`` if it is due; returns a word for logs and tests."""
    first = get_event(svc, event_id)
    if first is not None:
        logcontext.bind(job_id=first.job_id, client_id=first.client_id)
    waiting = _wait_reason(svc, first, event_id, clock.now())
    if waiting or first is None:
        return waiting or "skipped"
    token = random_tokens.token_hex(8)
    taken, evt, client = _lock_and_read(svc, event_id, first.client_id, token)
    if not taken:
        return "locked"
    unlocked = False
    try:
        # read again under the lock: another delivery may have settled it meanwhile
        now = clock.now()
        waiting = _wait_reason(svc, evt, event_id, now)
        if waiting or evt is None:
            return waiting or "skipped"
        prepared = _prepare(svc, evt, client, now, token)
        if isinstance(prepared, str):
            unlocked = prepared == DEFERRED  # the deferral gave the lock back in its step
            return prepared
        attempt = _call(svc, evt, prepared)
        unlocked = True  # the finish step releases the lock with the rest
        return _handle(svc, evt, prepared, attempt, token)
    finally:
        if not unlocked:
            run_script(svc, "delivery_unlock", [keys.delivery_lock(event_id)], [token])


def _lock_and_read(
    svc: Services, event_id: str, client_id: str, token: str
) -> tuple[bool, Event | None, Client | None]:
    """The event's lock, the event as it is now and its client, in one round trip."""
    pipe = svc.redis.pipeline(transaction=False)
    pipe.set(keys.delivery_lock(event_id), token, nx=True, ex=int(hold_seconds(svc)) + 1)
    pipe.hgetall(keys.event(event_id))
    pipe.hgetall(keys.client(client_id))
    taken, raw, client = pipe.execute()
    evt = load_event(svc, raw) if raw else None
    return bool(taken), evt, Client.from_hash(client) if client else None


def _wait_reason(svc: Services, evt: Event | None, event_id: str, now: float) -> str:
    """Why nothing may be sent now ("skipped": gone or settled, "not_due"), or ""."""
    if evt is None:
        DueSet(svc.redis, keys.DUE_DELIVERY).remove(event_id)  # expired with its job
        return "skipped"
    if evt.state != PENDING:
        return "skipped"
    due_at = evt.due_at or 0.0
    if due_at > now:
        DueSet(svc.redis, keys.DUE_DELIVERY).schedule(event_id, due_at)
        return "not_due"
    return ""


def _prepare(
    svc: Services, evt: Event, client: Client | None, now: float, token: str
) -> Prepared | str:
    """Ordering, endpoint and lease of a due, locked event: what to send, or why not now."""
    if not evt.snapshot:  # a replay of an event whose job has expired since
        settle(svc, evt, SKIPPED, "its job is no longer kept")
        return SKIPPED
    if earlier_pending(svc, evt):
        DueSet(svc.redis, keys.DUE_DELIVERY).schedule(evt.id, now + ORDER_WAIT_SECONDS)
        return "waiting"
    endpoint = endpoint_of(evt, client)
    if endpoint.disabled:
        dead_letter(svc, evt, endpoint.problem)
        return DEAD
    if not endpoint.url or not endpoint.secrets:
        settle(svc, evt, SKIPPED, endpoint.problem or "no signing secret")
        return SKIPPED
    taken, lapse = lease(svc, endpoint.url, evt.id, _deferral(evt, now, token))
    if taken == LEASE_IN_FLIGHT:
        return "in_flight"  # that attempt settles or reschedules the event when it ends
    if taken == LEASE_FULL:
        return DEFERRED
    return Prepared(endpoint.url, endpoint.secrets, lapse)


def _deferral(evt: Event, now: float, token: str) -> Deferral:
    """If the endpoint is at its in-flight cap: try when a slot frees, or at a growing back-off
    (beat), without spending an attempt."""
    delay = min(DEFER_MAX_SECONDS, DEFER_BASE_SECONDS * 2**evt.deferrals)
    delay *= random.uniform(1 - JITTER, 1 + JITTER)
    return Deferral(now + delay, evt.deferrals + 1, token)


# call -------------------------------------------------------------------------------------------


def _call(svc: Services, evt: Event, prepared: Prepared) -> Attempt:
    """The attempt itself, under the endpoint lease. The finish step gives the lease back; if
    the attempt cannot get that far, it is given back here, whatever happens."""
    try:
        return _safe_post(svc, prepared.url, evt, prepared.secrets)
    except BaseException:
        release(svc, prepared.url, evt.id, prepared.lapse)
        raise


def _safe_post(svc: Services, url: str, evt: Event, secrets: tuple[str, ...]) -> Attempt:
    """``post``, where anything that goes wrong is a failed attempt (on the timeline, retried
    on the schedule), never a crashed task that beat would re-send forever.

    ``post`` is looked up in this module when called: ``delivery.post`` is the seam the model
    tests patch to stand in for the consumer."""
    started = time.monotonic()
    try:
        return post(svc, url, evt, secrets)
    except Exception as exc:  # see the docstring
        log.exception("delivery attempt of %s failed unexpectedly", evt.id)
        return Attempt(None, ms_since(started), "", f"{type(exc).__name__}: {exc}"[:200])


# handle -----------------------------------------------------------------------------------------


def _handle(svc: Services, evt: Event, prepared: Prepared, attempt: Attempt, token: str) -> str:
    """Record the attempt, settle or reschedule the event by its outcome, and count it."""
    try:
        outcome = _settle_attempt(svc, evt, prepared, attempt, token)
    except BaseException:
        release(svc, prepared.url, evt.id, prepared.lapse)
        run_script(svc, "delivery_unlock", [keys.delivery_lock(evt.id)], [token])
        raise
    metrics.DELIVERIES.inc(outcome)
    metrics.DELIVERY_DURATION.observe(attempt.latency_ms / 1000)
    received = evt.snapshot.get(UPSTREAM_RECEIVED_AT)
    if outcome == DELIVERED and received:
        metrics.EVENT_LAG.observe(clock.now() - float(received))
    return outcome


def _settle_attempt(
    svc: Services, evt: Event, prepared: Prepared, attempt: Attempt, token: str
) -> str:
    """One step (:func:`outbox.finish`): lease back, attempt counted and recorded, event
    settled, dead-lettered or rescheduled, lock released."""
    finished = clock.now()  # waits count from the answer, so Retry-After is never cut short
    url = prepared.url
    before_dead = _disable_endpoint(svc, evt, url) if attempt.status_code == GONE else None

    def decide(number: int) -> Settlement:
        if attempt.ok:
            return Settlement(DELIVERED, f"{attempt.status_code}")
        if attempt.status_code == GONE:
            return Settlement(DEAD, "410 Gone: endpoint disabled", before_dead=before_dead)
        delay = next_delay(svc.settings.delivery_retry_schedule, number, attempt.retry_after)
        if delay is None:
            return Settlement(DEAD, "retry schedule exhausted")
        return Settlement(RETRY, due_at=finished + delay)

    sent = Sent(url, attempt, prepared.lapse, finished)
    settlement = finish(svc, evt, decide, sent, token)
    if settlement.state == DEAD:
        log.warning("event %s dead-lettered: %s", evt.id, settlement.reason)
    if settlement.state != RETRY:
        compact_if_final(svc, evt)
    return settlement.state


def next_delay(schedule: tuple[int, ...], attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt, or None when the schedule is exhausted."""
    if attempts >= len(schedule):
        return None
    base = schedule[attempts]
    delay = base * random.uniform(1 - JITTER, 1 + JITTER)
    return max(delay, retry_after or 0.0)


def _disable_endpoint(svc: Services, evt: Event, url: str) -> dict[str, str] | None:
    """410 Gone: stop sending there. A client's endpoint is disabled until re-enabled; the
    timeline entry that says so (written with the dead letter) is returned."""
    client = svc.clients.get(evt.client_id)
    if client is None or url != client.callback_url:
        return None
    svc.clients.update(evt.client_id, endpoint_disabled=True)
    return {"type": "endpoint_disabled", "event_id": evt.id, "url": safe_url(url)}
