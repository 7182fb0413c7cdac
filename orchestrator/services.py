"""Composition root: build the objects one process shares, once, from Settings.

:class:`Services`, :func:`current` and :data:`EXTENSION_NAME` live in
:mod:`orchestrator.core.services` (so lower layers can name them without importing the
components); they are re-exported here for compatibility.
"""

from __future__ import annotations

import redis

from orchestrator.core import metrics, redis_conn
from orchestrator.core.clients import ClientStore
from orchestrator.core.config import SECONDS_PER_DAY, Settings
from orchestrator.core.services import EXTENSION_NAME, Services, current
from orchestrator.jobs.state import StateMachine
from orchestrator.jobs.store import JobStore
from orchestrator.upstream.limiter import LEASE_MARGIN_SECONDS, SubmitLimiter
from orchestrator.upstream.pixazo import CONNECT_TIMEOUT_SECONDS, PixazoClient
from webhooks.inbound.inbox import CallbackInbox

# A fresh job waits this long in the submit due-set before beat treats its task as lost.
FIRST_SUBMIT_GRACE_SECONDS = 60.0
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0

__all__ = [
    "EXTENSION_NAME",
    "FIRST_SUBMIT_GRACE_SECONDS",
    "REDIS_SOCKET_TIMEOUT_SECONDS",
    "Services",
    "build_services",
    "current",
]


def build_services(settings: Settings, connection: redis.Redis | None = None) -> Services:
    r = connection or redis_conn.connect(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    metrics.RECORDER.configure(r, background=not settings.testing)  # where counts are flushed
    retention = settings.job_retention_days * SECONDS_PER_DAY
    return Services(
        settings=settings,
        redis=r,
        states=StateMachine(r, retention),
        jobs=JobStore(r, settings.job_deadline_seconds, FIRST_SUBMIT_GRACE_SECONDS),
        clients=ClientStore(r),
        pixazo=PixazoClient(
            settings.pixazo_base_url, settings.pixazo_api_key, settings.submit_timeout_seconds
        ),
        limiter=SubmitLimiter(
            r,
            settings.submit_rate_per_second,
            settings.submit_concurrency,
            lease_seconds=CONNECT_TIMEOUT_SECONDS
            + settings.submit_timeout_seconds
            + LEASE_MARGIN_SECONDS,
        ),
        inbox=CallbackInbox(r),
    )
