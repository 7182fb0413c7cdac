"""Beat's tick: drain the due-time sets (see orchestrator.reconcile)."""

from celery import shared_task

from orchestrator import dispatch, reconcile
from orchestrator.services import current


@shared_task(name=dispatch.RECONCILE)
def reconcile_tick() -> dict[str, int] | None:
    report = reconcile.tick(current())
    return None if report is None else report.counts
