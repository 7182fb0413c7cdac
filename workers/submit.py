"""The submit task. Its guard (a compare-and-set queued -> submitting) lives in submission."""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from orchestrator.upstream import submission


@shared_task(name=enqueue.SUBMIT)
def submit_job(job_id: str) -> str:
    return submission.submit(current(), job_id)
