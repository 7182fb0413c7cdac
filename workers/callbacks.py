"""Applying a recorded Pixazo callback to its job: the safety net of the receiver's own apply.

The receiver applies a new callback in its request; this task runs only when beat finds the
inbox entry still there after the grace (the web process died, or Redis failed, in between),
and applies it by the same path. It is idempotent: a callback already applied is ignored.
"""

from celery import shared_task

from orchestrator.core import enqueue, logcontext
from orchestrator.core.services import current
from webhooks.inbound.apply import apply_recorded


@shared_task(name=enqueue.APPLY_CALLBACK)
def apply_callback(inbox_id: str) -> str:
    svc = current()
    item = svc.inbox.load(inbox_id)
    if item is None:
        return "gone"
    logcontext.bind(job_id=item["job_id"])
    applied = apply_recorded(svc, inbox_id, item["job_id"], item["status"])
    return "applied" if applied.moved else (applied.ignored_reason or "ignored")
