"""One delivery attempt of a downstream event.

Routed to the ``delivery`` queue, which only the Procfile's ``delivery`` process consumes, on a
thread pool: an attempt mostly waits on a consumer's socket (until its wall-clock deadline,
``ORCHESTRATOR_DELIVERY_TIMEOUT_SECONDS``), so threads are cheap there, and slow consumers never
hold the prefork slots that submits and callbacks need (``worker`` does not consume this queue).
"""

from celery import shared_task

from orchestrator.core import enqueue
from orchestrator.core.services import current
from webhooks.outbound import delivery


@shared_task(name=enqueue.DELIVER)
def deliver_event(event_id: str) -> str:
    return delivery.deliver(current(), event_id)
