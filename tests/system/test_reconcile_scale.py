"""Reconciliation scales out, over real processes: beat's tick only fans out batch tasks on the
reconcile queue, and two reconcile worker processes drain a backlog of due items in parallel,
each item handed out exactly once (the batches' claims are atomic in a real Redis)."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from devtools.devstack import Orchestrator, Stack, base_env
from orchestrator.celery_app import celery_config
from orchestrator.core import enqueue, keys
from orchestrator.core.due import DueSet
from orchestrator.reconcile import steps
from tests.helpers import make_settings, wait_for

pytestmark = pytest.mark.integration

PER_SET = 2_000  # due polls and due deliveries each
BATCH = 100
SUCCEEDED = re.compile(
    rf"{re.escape(enqueue.RECONCILE_BATCH)}\[[^\]]+\] succeeded in [\d.]+s: (\d+)"
)


@pytest.fixture
def private_redis() -> Iterator[tuple[Stack, str]]:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        yield stack, url
    finally:
        stack.stop_all()


def handed_out(r: redis.Redis, queue: str) -> Counter[str]:
    """The first argument of every task message waiting in a Redis-broker queue, counted."""
    found: Counter[str] = Counter()
    for raw in r.lrange(queue, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        found[args[0]] += 1
    return found


def test_two_reconcile_workers_drain_a_backlog_in_parallel(private_redis) -> None:
    stack, url = private_redis
    r = redis.Redis.from_url(url, decode_responses=True)
    env = base_env(url, ORCHESTRATOR_RECONCILE_BATCH_SIZE=str(BATCH))
    orch = Orchestrator(stack, url, env)
    first = orch.start_reconcile_worker(concurrency=2)
    second = orch.start_reconcile_worker(concurrency=2)
    # A backlog, as an outage leaves it: due polls and deliveries whose tasks nobody consumes
    # here (no poll or delivery worker), so every hand-out stays countable in its queue.
    past = 1_000.0
    r.zadd(keys.DUE_POLL, {f"job_{i:05d}": past + i % 7 for i in range(PER_SET)})
    r.zadd(keys.DUE_DELIVERY, {f"evt_{i:05d}": past + i % 7 for i in range(PER_SET)})
    celery = Celery("test")
    celery.config_from_object(celery_config(make_settings(redis_url=url, broker_url=url)))
    celery.send_task(enqueue.RECONCILE, queue=enqueue.QUEUE_RECONCILE)  # what beat sends

    def drained() -> bool:
        return r.llen(enqueue.QUEUE_POLL) + r.llen(enqueue.QUEUE_DELIVERY) >= 2 * PER_SET

    wait_for(drained, 120, every=0.5, what="the backlog handed out")
    wait_for(lambda: r.llen(enqueue.QUEUE_RECONCILE) == 0, 30, what="every batch taken")
    polls, deliveries = handed_out(r, enqueue.QUEUE_POLL), handed_out(r, enqueue.QUEUE_DELIVERY)
    assert len(polls) == len(deliveries) == PER_SET
    assert set(polls.values()) == set(deliveries.values()) == {1}  # none handed out twice
    assert DueSet(r, keys.DUE_POLL).count_due(past + 10) == 0
    # both processes ran batches, and together they handled exactly the backlog
    per_worker = {
        proc.name: [int(n) for n in SUCCEEDED.findall(proc.log())] for proc in (first, second)
    }
    assert all(sum(handled) > 0 for handled in per_worker.values()), per_worker
    assert sum(sum(handled) for handled in per_worker.values()) == 2 * PER_SET, per_worker
    batches = sum(len(handled) for handled in per_worker.values())
    assert batches >= 2 * PER_SET // BATCH  # the tick fanned out: no single serial pass
    print(
        f"\nbacklog of {2 * PER_SET:,} due items drained in batches of {BATCH} by two "
        f"reconcile workers: { ({k: sum(v) for k, v in per_worker.items()}) }"
    )


def test_claimers_on_a_real_redis_never_share_a_member(private_redis) -> None:
    _, url = private_redis
    r = redis.Redis.from_url(url, decode_responses=True)
    r.zadd(keys.DUE_UNKNOWN, {f"job_{i:05d}": float(i % 50) for i in range(5_000)})
    start = threading.Barrier(6)
    taken: list[list[str]] = [[] for _ in range(6)]

    def claimer(mine: list[str]) -> None:
        own = DueSet(redis.Redis.from_url(url, decode_responses=True), keys.DUE_UNKNOWN)
        start.wait()
        while claimed := own.claim(100.0, 25, 100.0 + steps.LEASE_SECONDS):
            mine.extend(claimed)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    everything = [m for mine in taken for m in mine]
    assert len(everything) == len(set(everything)) == 5_000
    assert sum(1 for mine in taken if mine) > 1  # they did claim side by side
    # the lease: nothing is due again until it lapses, then everything is
    due = DueSet(r, keys.DUE_UNKNOWN)
    assert due.count_due(100.0 + steps.LEASE_SECONDS - 1) == 0
    assert due.count_due(100.0 + steps.LEASE_SECONDS) == 5_000
