"""Hourly: drop expired jobs from the indexes (see orchestrator.retention)."""

from celery import shared_task

from orchestrator import dispatch, retention
from orchestrator.services import current


@shared_task(name=dispatch.TRIM_INDEXES)
def trim_indexes() -> int:
    return retention.trim(current())
