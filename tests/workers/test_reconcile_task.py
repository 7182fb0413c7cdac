"""The reconcile tasks: beat's tick only fans out; a batch task drains one set's due members."""

from __future__ import annotations

from orchestrator.core import clock, enqueue, keys
from workers.reconcile import reconcile_batch, reconcile_tick


def test_the_tick_enqueues_batches_and_the_batches_drain(app, svc, sent_tasks) -> None:
    past = clock.now() - 1
    svc.redis.zadd(keys.DUE_POLL, {"job_a": past, "job_b": past})
    with app.app_context():
        assert reconcile_tick() == {"polls": 1}
        assert sent_tasks == [(enqueue.RECONCILE_BATCH, ("polls",))]
        assert reconcile_batch("polls") == 2
        assert reconcile_batch("polls") == 0  # claimed: nothing left due for a second batch
    assert sorted(args[0] for name, args in sent_tasks if name == enqueue.POLL) == [
        "job_a",
        "job_b",
    ]


def test_the_batch_task_is_ended_before_its_lease_lapses() -> None:
    assert reconcile_batch.soft_time_limit == enqueue.RECONCILE_BATCH_SOFT_TIME_LIMIT_SECONDS
    assert reconcile_batch.time_limit == enqueue.RECONCILE_BATCH_TIME_LIMIT_SECONDS
