"""Beat's tick fans out; batches drain the due-time sets (see orchestrator.reconcile.steps).

Both run on the ``reconcile`` queue, which only the Procfile's ``reconcile`` process consumes.
"""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.reconcile import steps


@shared_task(name=enqueue.RECONCILE)
def reconcile_tick() -> dict[str, int] | None:
    """Batches enqueued per due set; None when another tick holds the lock."""
    report = steps.fan_out(current())
    return None if report is None else report.counts


@shared_task(
    name=enqueue.RECONCILE_BATCH,
    soft_time_limit=enqueue.RECONCILE_BATCH_SOFT_TIME_LIMIT_SECONDS,
    time_limit=enqueue.RECONCILE_BATCH_TIME_LIMIT_SECONDS,
)
def reconcile_batch(step: str) -> int:
    """Members of one due set handled by this batch."""
    return steps.run_batch(current(), step)
