"""Dropping expired jobs from the indexes.

A terminal job's hash, timeline and events expire by themselves (state.py sets the TTL), but
the sorted-set indexes that list jobs cannot expire members. A job is scored by its creation,
or by its last operator retry (which re-scores it everywhere, see transition.lua), so every
member scored before the cutoff below is terminal and expired: trimming by score removes
exactly the dead members,
with one ZREMRANGEBYSCORE per index (the number of indexes grows with clients and models,
never with jobs).
"""

from __future__ import annotations

from orchestrator.core import catalog, clock, keys
from orchestrator.core.services import Services
from orchestrator.jobs.state import PUBLIC_STATUSES

TRIM_EVERY_SECONDS = 3600.0


def index_keys(client_ids: list[str]) -> list[str]:
    names = [keys.ALL_JOBS]
    names += [keys.status_index(s) for s in PUBLIC_STATUSES]
    names += [keys.model_index(m) for m in catalog.MODELS]
    for client_id in client_ids:
        names.append(keys.client_index(client_id))
        names += [keys.client_status_index(client_id, s) for s in PUBLIC_STATUSES]
        names += [keys.client_model_index(client_id, m) for m in catalog.MODELS]
    return names


def trim(svc: Services, now: float | None = None) -> int:
    """Remove index members of jobs old enough to have expired; returns how many went."""
    moment = clock.now() if now is None else now
    horizon = svc.retention_seconds + svc.settings.job_deadline_seconds
    cutoff_ms = int((moment - horizon) * 1000)
    pipe = svc.redis.pipeline(transaction=False)
    for name in index_keys(svc.clients.all_ids()):
        pipe.zremrangebyscore(name, "-inf", f"({cutoff_ms}")
    pipe.zremrangebyscore(keys.DEAD_DELIVERIES, "-inf", f"({moment - svc.retention_seconds}")
    return sum(pipe.execute())
