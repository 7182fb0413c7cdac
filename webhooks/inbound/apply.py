"""Applying a recorded callback: one path for the receiver (at once, in the request) and for
the ``apply_callback`` task (the safety net, when the receiver's apply never finished).

Both may run for one callback (a late task after a slow or broken request): the state machine's
compare-and-set lets only one of them move the job, and the event of a move is written once per
job, type and generation, so the other one is recorded on the timeline as ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.core.ids import created_at
from orchestrator.core.services import Services
from orchestrator.upstream.statuses import DECISION_FIELDS, Applied, apply_upstream

READ_BACK = DECISION_FIELDS  # what the record reads back for the receiver's apply


def apply_recorded(
    svc: Services,
    inbox_id: str,
    job_id: str,
    status: Mapping[str, Any],
    job: Mapping[str, str] | None = None,
) -> Applied:
    """Apply the callback recorded as ``inbox_id``, then forget the inbox entry (in the apply's
    last round trip). ``job`` is the job's decision fields as the record read them back."""
    return apply_upstream(
        svc,
        job_id,
        status,
        "callback",
        svc.settings.stuck_after_seconds,
        received_at=created_at(inbox_id),  # the inbox id was made when the callback arrived
        job=job,
        then=lambda pipe: svc.inbox.done(inbox_id, pipe),
    )
