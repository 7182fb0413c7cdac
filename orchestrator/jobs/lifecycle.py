"""The one path for "move the job, write its event, enqueue the event's delivery".

The state machine writes the event into the outbox in the same step as the move; enqueuing its
delivery straight away is only the fast path (beat's due:delivery drain is the safety net), so
a lost enqueue makes the event late, never lost.
"""

from __future__ import annotations

from typing import Any

from orchestrator.core import enqueue
from orchestrator.core.services import Services
from orchestrator.jobs.state import TransitionResult


def move(svc: Services, job_id: str, **transition: Any) -> TransitionResult:
    """:meth:`StateMachine.transition`, then the delivery of the event it created, if any."""
    result = svc.states.transition(job_id, **transition)
    if result.event_id:
        enqueue.deliver(result.event_id)
    return result
