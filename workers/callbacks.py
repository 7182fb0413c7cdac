"""Applying a recorded Pixazo callback to its job."""

from celery import shared_task

from orchestrator.core import enqueue, logcontext
from orchestrator.core.ids import created_at
from orchestrator.core.services import current
from orchestrator.upstream.statuses import apply_upstream


@shared_task(name=enqueue.APPLY_CALLBACK)
def apply_callback(inbox_id: str) -> str:
    svc = current()
    inbox = svc.inbox
    item = inbox.load(inbox_id)
    if item is None:
        return "gone"
    logcontext.bind(job_id=item["job_id"])
    applied = apply_upstream(
        svc,
        item["job_id"],
        item["status"],
        "callback",
        svc.settings.stuck_after_seconds,
        received_at=created_at(inbox_id),  # the inbox id was made when the callback arrived
    )
    inbox.done(inbox_id)
    return "applied" if applied.moved else (applied.ignored_reason or "ignored")
