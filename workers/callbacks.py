"""Applying a recorded Pixazo callback to its job."""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.upstream.statuses import apply_upstream


@shared_task(name=enqueue.APPLY_CALLBACK)
def apply_callback(inbox_id: str) -> str:
    svc = current()
    inbox = svc.inbox
    item = inbox.load(inbox_id)
    if item is None:
        return "gone"
    applied = apply_upstream(
        svc, item["job_id"], item["status"], "callback", svc.settings.stuck_after_seconds
    )
    inbox.done(inbox_id)
    return "applied" if applied.moved else (applied.ignored_reason or "ignored")
