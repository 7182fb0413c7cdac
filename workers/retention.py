"""Hourly: drop expired jobs from the indexes (see orchestrator.jobs.retention)."""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.jobs import retention


@shared_task(name=enqueue.TRIM_INDEXES)
def trim_indexes() -> int:
    return retention.trim(current())
