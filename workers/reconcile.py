"""Beat's tick: drain the due-time sets (see orchestrator.reconcile)."""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.reconcile import steps


@shared_task(name=enqueue.RECONCILE)
def reconcile_tick() -> dict[str, int] | None:
    report = steps.tick(current())
    return None if report is None else report.counts
