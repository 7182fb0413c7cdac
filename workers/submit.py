"""The submit task. Its guard (a compare-and-set queued -> submitting) lives in submission."""

from celery import shared_task

from orchestrator import dispatch, submission
from orchestrator.services import current


@shared_task(name=dispatch.SUBMIT)
def submit_job(job_id: str) -> str:
    return submission.submit(current(), job_id)
