"""One delivery attempt of a downstream event."""

from celery import shared_task

from orchestrator import delivery, dispatch
from orchestrator.services import current


@shared_task(name=dispatch.DELIVER)
def deliver_event(event_id: str) -> str:
    return delivery.deliver(current(), event_id)
