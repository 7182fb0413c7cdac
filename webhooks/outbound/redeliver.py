"""Operators' actions on outbound events: redeliver one event, a job's events, or a client's
dead letters, and list the dead letters. They sit above both the job actions (whose result
type and audit log they share) and delivery (whose replay they use), so that
``orchestrator.jobs`` never imports ``webhooks``.
"""

from __future__ import annotations

from typing import cast

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.services import Services
from orchestrator.jobs.actions import BULK_LIMIT, ActionResult, Refusal, audit, job_event_ids
from webhooks.outbound import delivery


def redeliver(svc: Services, event_id: str, actor: str) -> ActionResult:
    if not delivery.replay(svc, event_id):
        return ActionResult(False, "no such event", refusal=Refusal.NOT_FOUND)
    job_id = cast("str | None", svc.redis.hget(keys.event(event_id), "job_id"))
    if job_id:
        svc.jobs.append_timeline(
            job_id,
            {"type": "operator", "action": "redeliver", "actor": actor, "event_id": event_id},
        )
    enqueue.deliver(event_id)
    audit(svc, actor, "redeliver", event_id)
    return ActionResult(True, "redelivery queued")


def redeliver_job(svc: Services, job_id: str, actor: str) -> ActionResult:
    events = job_event_ids(svc, job_id)
    if not events:
        return ActionResult(False, "this job has no events", refusal=Refusal.NOT_FOUND)
    for event_id in events.values():
        redeliver(svc, event_id, actor)
    return ActionResult(True, f"{len(events)} event(s) queued for redelivery")


def dead_letters(
    svc: Services, client_id: str | None = None, limit: int = BULK_LIMIT
) -> list[dict[str, str]]:
    """Dead-lettered events (their hashes), newest first, of one client or of all."""
    index = keys.client_dead_deliveries(client_id) if client_id else keys.DEAD_DELIVERIES
    ids = cast("list[str]", svc.redis.zrevrange(index, 0, limit - 1))
    pipe = svc.redis.pipeline(transaction=False)
    for event_id in ids:
        pipe.hgetall(keys.event(event_id))
    return [dict(evt) for evt in pipe.execute() if evt]


def redeliver_client_since(svc: Services, client_id: str, since: float, actor: str) -> ActionResult:
    """Replay every delivery of ``client_id`` dead-lettered at or after ``since`` (unix s)."""
    if svc.clients.get(client_id) is None:
        return ActionResult(False, "no such client", refusal=Refusal.NOT_FOUND)
    event_ids = [
        e for e in delivery.dead_since(svc, client_id, since) if redeliver(svc, e, actor).ok
    ]
    audit(svc, actor, "bulk_redeliver", client_id, f"{len(event_ids)} since {clock.iso(since)}")
    return ActionResult(
        True,
        f"{len(event_ids)} failed delivery(ies) queued for redelivery",
        data={"client_id": client_id, "since": clock.iso(since), "event_ids": event_ids},
    )
