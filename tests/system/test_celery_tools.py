"""Celery's own tools against real workers: the liveness probe (``orchestrator worker ping``,
a remote-control ping) answers for a live worker and exits 1 for a dead one, and task events
reach a monitor the way Flower and celery-exporter read them: from the moment the monitor asks
(Flower's ``enable_events``), or from start-up with ORCHESTRATOR_TASK_EVENTS=1."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from typing import Any

import pytest
from celery import Celery

from orchestrator.core import enqueue
from tests.helpers import wait_for
from tests.system.resilience_support import cli, dedicated_system, post_jobs, wait_terminal

pytestmark = pytest.mark.integration
PROBE_TIMEOUT = "2"


def ping(system, *args: str):
    answer = cli(system, "worker", "ping", "--timeout", PROBE_TIMEOUT, "--json", *args)
    return answer.returncode, json.loads(answer.stdout.strip().splitlines()[-1])


class Monitor:
    """What Flower does: a receiver on the events exchange, counting events by type."""

    def __init__(self, broker_url: str) -> None:
        self.app = Celery(broker=broker_url)
        self.seen: Counter = Counter()
        self.received: Counter = Counter()  # by task name
        self.succeeded: Counter = Counter()  # by task name
        self._names: dict[str, str] = {}
        self._ready = threading.Event()
        self._receiver = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the monitor did not start"

    def _on_event(self, event: dict) -> None:
        kind = event["type"]
        self.seen[kind] += 1
        if kind in ("task-sent", "task-received"):
            self._names[event["uuid"]] = event["name"]
        if kind == "task-received":
            self.received[event["name"]] += 1
        elif kind == "task-succeeded":
            self.succeeded[self._names.get(event["uuid"], "?")] += 1

    def _run(self) -> None:
        with self.app.connection() as conn:
            receiver = self.app.events.Receiver(conn, handlers={"*": self._on_event})
            subscribed = receiver.on_consume_ready

            def ready(*args: Any, **kwargs: Any) -> None:
                subscribed(*args, **kwargs)
                self._ready.set()  # events sent from now on reach us (a fanout: no backlog)

            receiver.on_consume_ready = ready
            self._receiver = receiver
            receiver.capture(limit=None, timeout=None, wakeup=False)

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(5)


def test_the_probe_answers_for_live_workers_and_fails_for_a_dead_one() -> None:
    with dedicated_system() as (stack, system, _):
        host = socket.gethostname()
        code, answer = ping(system, "-d", "worker1@%h")
        assert code == 0 and answer == {"ok": True, "answered": [f"worker1@{host}"], "missing": []}
        code, answer = ping(system)  # any worker on this host
        every = {f"worker1@{host}", f"delivery@{host}", f"reconcile1@{host}"}
        assert code == 0 and set(answer["answered"]) == every

        [worker] = system.orch.workers
        stack.stop(worker)  # a dead worker (not restarted): the probe must say so
        code, answer = ping(system, "-d", "worker1@%h")
        assert code == 1 and answer["missing"] == [f"worker1@{host}"], answer
        code, answer = ping(system, "-d", "worker1@%h", "-d", "delivery@%h")
        assert code == 1 and answer["answered"] == [f"delivery@{host}"], answer
        assert system.orch.delivery is not None
        stack.stop(system.orch.delivery)
        for reconciler in system.orch.reconcilers:
            stack.stop(reconciler)
        code, answer = ping(system)
        assert code == 1 and answer == {"ok": False, "answered": [], "missing": []}


def _run_jobs_under(monitor: Monitor, system, n: int = 3) -> list[str]:
    _, key = system.new_client("events")
    job_ids = post_jobs(system, key, n, threads=n)
    assert wait_terminal(system, job_ids, 60, "jobs terminal") == {"completed": n}
    wait_for(
        lambda: monitor.succeeded[enqueue.DELIVER] >= len(job_ids),
        30,
        what="delivery tasks succeeded",
    )
    return job_ids


def test_task_events_reach_a_monitor_once_it_enables_them_as_flower_does() -> None:
    with dedicated_system() as (_, system, _):
        monitor = Monitor(system.orch.env["REDIS_URL"])
        try:
            _, key = system.new_client("quiet")
            quiet = post_jobs(system, key, 2, threads=2)
            assert wait_terminal(system, quiet, 60, "jobs terminal") == {"completed": 2}
            assert monitor.seen["task-received"] == 0  # nobody asked: no task events
            assert monitor.seen["worker-heartbeat"] >= 1  # heartbeats always
            replies = monitor.app.control.enable_events(reply=True, timeout=2)
            assert len(replies) == 3, replies  # worker, delivery and reconcile all answered
            job_ids = _run_jobs_under(monitor, system)
        finally:
            monitor.stop()
    print(f"\ntask events seen by a monitor: {dict(monitor.seen)}")
    assert monitor.seen["task-sent"] == 0  # a client's, only with ORCHESTRATOR_TASK_EVENTS=1
    assert monitor.seen["task-started"] >= len(job_ids)
    assert monitor.received[enqueue.SUBMIT] >= len(job_ids)
    assert monitor.succeeded[enqueue.SUBMIT] >= len(job_ids)


def test_orchestrator_task_events_sends_every_task_event_from_start_up() -> None:
    with dedicated_system(env={"ORCHESTRATOR_TASK_EVENTS": "1"}) as (_, system, _):
        monitor = Monitor(system.orch.env["REDIS_URL"])
        try:
            job_ids = _run_jobs_under(monitor, system)
        finally:
            monitor.stop()
    print(f"\ntask events seen by a monitor: {dict(monitor.seen)}")
    assert monitor.seen["task-sent"] >= len(job_ids)  # task_send_sent_event (web and beat)
    assert monitor.seen["task-started"] >= len(job_ids)
    assert monitor.received[enqueue.SUBMIT] >= len(job_ids)
    assert monitor.succeeded[enqueue.SUBMIT] >= len(job_ids)
