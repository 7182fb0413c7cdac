"""Where an event goes, and the per-endpoint in-flight leases that isolate slow consumers.

Each endpoint may have at most ``ENDPOINT_MAX_IN_FLIGHT`` requests in flight across all workers
(a Redis sorted set of leases). A lease (and the event's delivery lock) is held for the
attempt's deadline plus a margin, so neither lapses while the attempt runs.

An event deferred by a full endpoint also waits in the endpoint's waiting set, with its lock
given back, in the same step as the check that found the endpoint full (:class:`Deferral`); an
attempt that delivered its event gives its lease back (``event_finish.lua``) and takes the
earliest waiting event, which :func:`hand_on` makes due now and enqueues, so a burst to one
endpoint flows at the rate its slots free up instead of waiting for beat to re-drive the
deferred events. An attempt that failed hands nothing on: a failing (or
trickling) endpoint gets its deferred events at their back-off, never eagerly. Beat's due set
stays the safety net.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.clients import Client
from orchestrator.core.records import Event
from orchestrator.core.services import Services
from webhooks.outbound.scripts import run_script

ENDPOINT_MAX_IN_FLIGHT = 4  # requests one endpoint may have open at once, across all workers
# The event lock and the endpoint lease outlive an attempt's deadline by this much: name
# resolution (not under the deadline) and the bookkeeping after the answer fit in it.
HOLD_MARGIN_SECONDS = 30.0
LEASE_TAKEN, LEASE_FULL, LEASE_IN_FLIGHT = 1, 0, -1
# A waiting set no attempt hands on from (its endpoint went quiet) goes with this.
WAITING_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    secrets: tuple[str, ...]
    problem: str = ""  # why there is nothing to send to
    disabled: bool = False  # the endpoint answered 410 Gone earlier: dead-letter, keep for replay


def endpoint_for(svc: Services, evt: Event) -> Endpoint:
    """The job's own callback_url, else the client's endpoint (as registered now)."""
    return endpoint_of(evt, svc.clients.get(evt.client_id))


def endpoint_of(evt: Event, client: Client | None) -> Endpoint:
    """:func:`endpoint_for` with the client just read (``None``: deleted)."""
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


def endpoint_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def hold_seconds(svc: Services) -> float:
    """How long an attempt's lock and lease last: past its deadline, whatever the setting."""
    return svc.settings.delivery_timeout_seconds + HOLD_MARGIN_SECONDS


@dataclass(frozen=True)
class Deferral:
    """What happens to an attempt that finds its endpoint full, decided before the lease and done
    by the lease's own step (``endpoint_lease.lua``): the event waits for a freed slot, is due
    again at its back-off (beat's safety net) and gives its lock back."""

    due_at: float
    deferrals: int  # the event's count of deferrals, this one included
    lock_token: str  # the attempt's hold on the event's delivery lock


def lease(svc: Services, url: str, event_id: str, deferral: Deferral) -> tuple[int, float]:
    """(LEASE_TAKEN, FULL or IN_FLIGHT, when the lease lapses) for one attempt to ``url``;
    FULL has done ``deferral``."""
    now = clock.now()
    lapse = now + hold_seconds(svc)
    digest = endpoint_hash(url)
    names = [
        keys.endpoint_in_flight(digest),
        keys.endpoint_waiting(digest),
        keys.event(event_id),
        keys.DUE_DELIVERY,
        keys.delivery_lock(event_id),
    ]
    args = [
        repr(now),
        repr(lapse),
        event_id,
        ENDPOINT_MAX_IN_FLIGHT,
        int(hold_seconds(svc)) + 1,
        repr(deferral.due_at),
        deferral.deferrals,
        deferral.lock_token,
        WAITING_TTL_SECONDS,
    ]
    return int(run_script(svc, "endpoint_lease", names, args)), lapse


def release(svc: Services, url: str, event_id: str, lapse: float) -> None:
    key = keys.endpoint_in_flight(endpoint_hash(url))
    run_script(svc, "endpoint_release", [key], [event_id, repr(lapse)])


def hand_on(svc: Services, event_id: str) -> bool:
    """An attempt gave its lease back and took ``event_id`` off the endpoint's waiting set
    (``event_finish.lua``): make it due now and enqueue its delivery, unless it no longer needs
    it (settled meanwhile, or due already). Its task takes a lease like any attempt, and waits
    again if it finds none."""
    args = [repr(clock.now()), event_id]
    if not run_script(svc, "event_due_now", [keys.event(event_id), keys.DUE_DELIVERY], args):
        return False
    enqueue.deliver(event_id)
    return True
