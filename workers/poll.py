"""Polling one job's status at Pixazo."""

from celery import shared_task

from orchestrator import dispatch, polling
from orchestrator.services import current


@shared_task(name=dispatch.POLL)
def poll_job(job_id: str) -> str:
    return polling.poll(current(), job_id)
