"""The objects one process shares, and how tasks and views reach them.

:class:`Services` is built once from Settings by :func:`orchestrator.services.build_services`
(the app factory's composition root) and stored in the Flask app under
:data:`EXTENSION_NAME`. Tasks and views reach it through :func:`current`, inside the Flask
app context that the Celery task class pushes, so no connection is ever made at import time.

The component types live in upper layers (jobs, upstream, webhooks); they are imported only
for type checking so that ``orchestrator.core`` never imports those layers at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from orchestrator.core.config import SECONDS_PER_DAY

if TYPE_CHECKING:
    import redis

    from orchestrator.core.clients import ClientStore
    from orchestrator.core.config import Settings
    from orchestrator.jobs.state import StateMachine
    from orchestrator.jobs.store import JobStore
    from orchestrator.upstream.limiter import SubmitLimiter
    from orchestrator.upstream.pixazo import PixazoClient
    from webhooks.inbound.inbox import CallbackInbox

EXTENSION_NAME = "orchestrator"


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    states: StateMachine
    jobs: JobStore
    clients: ClientStore
    pixazo: PixazoClient
    limiter: SubmitLimiter
    inbox: CallbackInbox

    @property
    def retention_seconds(self) -> int:
        return self.settings.job_retention_days * SECONDS_PER_DAY

    @property
    def request_binding_seconds(self) -> int:
        """How long a Pixazo request id finds its job: the retention and a day, since a job's
        retention runs from its end, which may come (a deadline) after its last binding."""
        return self.retention_seconds + SECONDS_PER_DAY


def current() -> Services:
    services: Services = current_app.extensions[EXTENSION_NAME]
    return services
