"""What the consumer receives: the event body, and its Standard Webhooks signature headers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from standardwebhooks.webhooks import Webhook

from orchestrator.core.records import Event
from orchestrator.jobs.store import render
from webhooks.outbound.settled import SIGNED_DATA, event_from_hash


def event_body(evt: Event | Mapping[str, str]) -> dict[str, Any]:
    """The event as the consumer receives it: the job object frozen when the event was made."""
    if not isinstance(evt, Event):
        evt = event_from_hash(evt)
    return {
        "id": evt.id,
        "type": evt.type,
        "created_at": evt.created_at,
        "data": event_data(evt.snapshot),
    }


def event_data(snapshot: Mapping[str, str]) -> dict[str, Any]:
    """The body's ``data``: the job object rendered from the snapshot, or as it was sent."""
    data = snapshot.get(SIGNED_DATA)
    if data is not None:
        return cast("dict[str, Any]", json.loads(data))
    return render(snapshot)


def event_payload(evt: Event) -> str:
    """The body's exact bytes (as text): compact JSON, the string that is signed and sent."""
    return json.dumps(event_body(evt), separators=(",", ":"))


def sign(secrets: tuple[str, ...], msg_id: str, timestamp: datetime, payload: str) -> str:
    """Standard Webhooks signatures, one per live secret, so rotation never breaks a consumer."""
    return " ".join(Webhook(s).sign(msg_id, timestamp, payload) for s in secrets)


def webhook_headers(
    secrets: tuple[str, ...], msg_id: str, timestamp: datetime, payload: str
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": sign(secrets, msg_id, timestamp, payload),
    }
