"""Celery, configured from the Flask app so that every task runs inside its app context.

The settings are the ones issue-proof delivery needs: late acks and rejection on a lost worker
(a killed worker's task is redelivered, and every task's guard makes that harmless), prefetch
of one, JSON only. No task uses a countdown or ETA: long waits live in Redis due-time sets,
so the visibility timeout only has to outlast one task run.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_shutdown
from flask import Flask

from orchestrator.core import enqueue, kombu_redis, logcontext, metrics, redis_conn
from orchestrator.core.config import Settings
from orchestrator.core.ids import is_id
from orchestrator.jobs.retention import TRIM_EVERY_SECONDS

TASK_MODULES = (
    "workers.submit",
    "workers.callbacks",
    "workers.poll",
    "workers.delivery",
    "workers.reconcile",
    "workers.retention",
    "workers.watchdog",
)
VISIBILITY_TIMEOUT_SECONDS = 3600
TASK_SOFT_TIME_LIMIT_SECONDS = 240
TASK_TIME_LIMIT_SECONDS = 300
REDBEAT_LOCK_TIMEOUT_SECONDS = 30
# The broker URL as configured (redis+sentinel:// included), for orchestrator.core.broker;
# ``broker_url`` holds kombu's spelling of it.
BROKER_URL_CONF = "orchestrator_broker_url"


def celery_config(settings: Settings) -> dict[str, Any]:
    broker_url, broker_options = redis_conn.kombu_broker(settings.broker_url)
    redbeat_url, redbeat_options = redis_conn.redbeat_options(settings.redis_url)
    return {
        "broker_url": broker_url,
        # Cheap redis clients for kombu's per-call ones (orchestrator/core/kombu_redis.py).
        "broker_transport": kombu_redis.transport_for(broker_url),
        BROKER_URL_CONF: settings.broker_url,
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_transport_options": {
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            **broker_options,
        },
        "broker_connection_retry_on_startup": True,
        "task_routes": enqueue.ROUTES,
        "task_default_queue": enqueue.QUEUE_RECONCILE,
        "task_soft_time_limit": TASK_SOFT_TIME_LIMIT_SECONDS,
        "task_time_limit": TASK_TIME_LIMIT_SECONDS,
        "worker_hijack_root_logger": False,
        # Remote control (``celery inspect ping``, ``orchestrator worker ping``, Flower). It
        # subscribes to a fanout, a pub/sub connection on Redis; kombu < 5.4 turned its loss in
        # a Redis restart into an "Unrecoverable error" (celery/celery#8030, fixed by
        # celery/kombu#2007), and kombu 5.7 also drops a half-open pub/sub connection after
        # missed health checks (setup.cfg requires it). tests/system/test_chaos_crash.py's Redis
        # restart keeps this proven.
        "worker_enable_remote_control": True,
        # Task events cost about a sixth of a job's CPU (three JSON events per task run, each
        # published), and nothing reads them unless a monitor listens. Workers send heartbeats
        # always, and task events from the moment a monitor asks (Flower sends Celery's
        # ``enable_events`` control when it starts; ``celery control enable_events`` does it by
        # hand); ORCHESTRATOR_TASK_EVENTS=1 sends them from start-up, ``task-sent`` included
        # (celery-exporter counts those, and no remote command can turn them on in a client).
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        # Read by workers.watchdog: an idle worker whose queues fill for this long exits.
        "worker_stall_seconds": settings.worker_stall_seconds,
        # RedBeat keeps the schedule in Redis behind a lock: a second beat process waits
        # instead of double-firing (the reconcile task holds its own lock as well). Our
        # subclass outlives a Redis restart instead of exiting.
        "beat_scheduler": "orchestrator.reconcile.beat:ResilientRedBeatScheduler",
        # RedBeat spells Sentinel its own way (redis_conn.redbeat_options); options are set
        # explicitly so that RedBeat never borrows the broker's transport options.
        "redbeat_redis_url": redbeat_url,
        "redbeat_redis_options": redbeat_options,
        "redbeat_lock_timeout": REDBEAT_LOCK_TIMEOUT_SECONDS,
        "beat_schedule": {
            "reconcile": {
                "task": enqueue.RECONCILE,
                "schedule": settings.reconcile_interval_seconds,
                "options": {"expires": max(settings.reconcile_interval_seconds * 2, 1.0)},
            },
            "trim-indexes": {
                "task": enqueue.TRIM_INDEXES,
                "schedule": TRIM_EVERY_SECONDS,
            },
        },
    }


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask, include=list(TASK_MODULES))
    celery.config_from_object(celery_config(settings))
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


@task_prerun.connect
def _bind_task_context(
    task_id: str | None = None,
    task: Task | None = None,
    args: tuple[object, ...] | None = None,
    **_: object,
) -> None:
    """Log lines of a task name it, its id and, when its argument is one, the job."""
    logcontext.clear()
    logcontext.bind(task_name=task.name if task else None, task_id=task_id)
    first = (args or (None,))[0]
    if is_id(first, "job"):
        logcontext.bind(job_id=str(first))


@task_postrun.connect
def _clear_task_context(**_: object) -> None:
    logcontext.clear()


@worker_process_shutdown.connect
def _flush_metrics(**_: object) -> None:
    """A prefork child ends with ``os._exit``, which skips ``atexit``: flush its last counts."""
    metrics.RECORDER.flush()
