"""What a log line is about: the job, client, HTTP request and Celery task being handled.

Each is a context variable, set where a request or a task starts handling a job
(:func:`bind`) and cleared when it ends, so that every line logged meanwhile, by our code or a
library's, carries them without being passed along. :class:`ContextFilter` copies them onto
log records, where the JSON formatter (``LOG_FORMAT=json``) writes them as fields.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

JOB_ID = "job_id"
CLIENT_ID = "client_id"
REQUEST_ID = "request_id"  # the HTTP request's Request-Id (never Pixazo's request_id)
TASK_NAME = "task_name"
TASK_ID = "task_id"
FIELDS = (JOB_ID, CLIENT_ID, REQUEST_ID, TASK_NAME, TASK_ID)

_VARS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"log_{name}", default=None) for name in FIELDS
}


def bind(**values: str | None) -> None:
    """Set some of :data:`FIELDS` for what this thread (or task) handles from now on."""
    for name, value in values.items():
        _VARS[name].set(value)


def clear() -> None:
    """Forget everything: a pooled thread's next request or task starts blank."""
    for var in _VARS.values():
        var.set(None)


def current() -> dict[str, str]:
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    """Adds the bound fields to each record (a field the call passed in ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
