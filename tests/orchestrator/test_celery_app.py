"""Celery's settings are the ones at-least-once delivery needs (see orchestrator.celery_app)."""

from __future__ import annotations

import ast
from pathlib import Path

from orchestrator import celery_app
from orchestrator.core import enqueue
from tests.helpers import make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_late_acks_prefetch_one_json_only() -> None:
    config = celery_app.celery_config(make_settings())
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["task_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["beat_scheduler"] == "orchestrator.reconcile.beat:ResilientRedBeatScheduler"
    assert config["task_routes"] == enqueue.ROUTES


def test_visibility_timeout_outlasts_any_task_run() -> None:
    config = celery_app.celery_config(make_settings())
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > config["task_time_limit"]


def test_no_task_is_sent_with_a_countdown_or_eta() -> None:
    """Long waits live in due-time sets; a countdown longer than the visibility timeout would
    make Redis redeliver the message while it still waits."""
    offenders = []
    for folder in ("orchestrator", "workers", "webhooks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg in ("countdown", "eta"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.value.lineno}")
    assert offenders == []
