"""Slow consumers never hold the slots submits and callbacks need: only the thread-pool
``delivery`` process consumes the delivery queue, and only the ``reconcile`` process the
reconcile queue (beat's fan-out and its batches), in the Procfile and in the dev stack."""

from __future__ import annotations

import shlex
from pathlib import Path

from devtools import devstack
from orchestrator.core import enqueue

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


def procfile() -> dict[str, list[str]]:
    lines = (line.split(":", 1) for line in PROCFILE.read_text().splitlines() if ":" in line)
    return {name.strip(): shlex.split(command) for name, command in lines}


def option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_worker_does_not_consume_the_delivery_queue_and_the_delivery_process_does():
    processes = procfile()
    worker_queues = option(processes["worker"], "-Q").split(",")
    assert enqueue.QUEUE_DELIVERY not in worker_queues
    assert set(worker_queues) | {enqueue.QUEUE_DELIVERY, enqueue.QUEUE_RECONCILE} == set(
        enqueue.ALL_QUEUES
    )
    assert option(processes["delivery"], "-Q") == enqueue.QUEUE_DELIVERY
    assert option(processes["delivery"], "-P") == "threads"


def test_only_the_reconcile_process_consumes_the_reconcile_queue():
    processes = procfile()
    assert enqueue.QUEUE_RECONCILE not in option(processes["worker"], "-Q").split(",")
    reconcile = processes["reconcile"]
    assert reconcile[:4] == processes["worker"][:4]  # celery -A workers.entry worker
    assert option(reconcile, "-Q") == enqueue.QUEUE_RECONCILE
    assert option(reconcile, "-n").startswith("reconcile@")
    for flag in ("--without-gossip", "--without-mingle"):
        assert flag in reconcile
    assert option(reconcile, "-l") == option(processes["worker"], "-l")
    # the fan-out, its batches and the hourly trim all land on that queue
    for task in (enqueue.RECONCILE, enqueue.RECONCILE_BATCH, enqueue.TRIM_INDEXES):
        assert enqueue.ROUTES[task]["queue"] == enqueue.QUEUE_RECONCILE


def test_the_dev_stack_starts_workers_as_the_procfile_does():
    assert devstack.WORKER_QUEUES.split(",") == option(procfile()["worker"], "-Q").split(",")
    assert devstack.DELIVERY_QUEUE == enqueue.QUEUE_DELIVERY
    assert option(procfile()["reconcile"], "-Q") == devstack.RECONCILE_QUEUE


def test_every_worker_sends_heartbeats_so_flower_sees_it_online():
    """Flower and celery-exporter mark a worker offline without its heartbeat events."""
    for name, command in procfile().items():
        if command[:4] == ["celery", "-A", "workers.entry", "worker"]:
            assert "--without-heartbeat" not in command, name
