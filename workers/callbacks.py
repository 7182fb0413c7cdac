"""Applying a recorded Pixazo callback to its job."""

from celery import shared_task

from orchestrator import dispatch
from orchestrator.results import apply_upstream
from orchestrator.services import current


@shared_task(name=dispatch.APPLY_CALLBACK)
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
