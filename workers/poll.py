"""Polling one job's status at Pixazo."""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.upstream import polling


@shared_task(name=enqueue.POLL)
def poll_job(job_id: str) -> str:
    return polling.poll(current(), job_id)
