"""``make bench-reconcile``, on a private redis-server:

1. Stored jobs don't matter: one reconcile round (beat's fan-out, then one batch of every due
   set, serially) with 10,000 and with 1,000,000 stored jobs, each time with 1,000 jobs due;
   prints the median round times and their ratio. The design target is a ratio under 1.5: a
   round reads only what is due (ZCOUNT, then claims bounded by ZRANGEBYSCORE ... LIMIT), so the
   number of jobs stored should not matter. Every stored job sits in the poll and deadline due
   sets with a future score (the worst case for those sets: in production most stored jobs are
   terminal and sit in none). The 1,000 due jobs are spread over four kinds of work, each doing
   its real Redis work (Lua state transitions included): polls handed out, submits of unknown
   outcome resolved, lost submits expired, deadlines failed. ``enqueue.send`` is replaced by a
   counter, so what is timed is reconcile's own Redis work.
2. Catch-up throughput: a backlog of 20,000 due items (10,000 polls, 10,000 deliveries) drained
   by the batch code path (``steps.run_batch``: atomic claim, then a real Celery message per
   item, published to the same Redis as broker), by one drainer and by two drainer processes at
   once; prints due items drained per second (target: >= 1,000) and checks that every item was
   handed out exactly once.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event

import redis
from celery import Celery

from benchmarks.common import bench_settings
from devtools.devstack import Stack
from orchestrator.celery_app import celery_config
from orchestrator.core import enqueue, keys
from orchestrator.reconcile import steps
from orchestrator.services import Services, build_services

SMALL, LARGE = 10_000, 1_000_000
DUE_PER_KIND = 250  # x 4 kinds = 1,000 due per tick
REPETITIONS = 9
CHUNK = 50_000  # jobs written per Lua call while populating
FUTURE_SECONDS = 86_400.0
TARGET_RATIO = 1.5
SOCKET_TIMEOUT_SECONDS = 300.0
BACKLOG_PER_SET = 10_000  # x 2 sets (polls, deliveries) = 20,000 due items
CATCH_UP_SETS = (
    ("polls", keys.DUE_POLL, enqueue.QUEUE_POLL),
    ("deliveries", keys.DUE_DELIVERY, enqueue.QUEUE_DELIVERY),
)
DRAINERS = (1, 2)
TARGET_ITEMS_PER_SECOND = 1_000

# Writes jobs first..last (hash + indexes + future due entries) inside Redis: a million jobs in a
# few seconds, instead of a million round trips from Python.
_POPULATE_LUA = """
local first, last, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local future = now + tonumber(ARGV[4])
for i = first, last do
  local id = string.format('job_bench%08d', i)
  local created = string.format('%d', now * 1000 - i)
  redis.call('HSET', 'job:' .. id, 'id', id, 'status', 'submitted', 'client_id', 'cl_bench',
    'model', 'pixverse-v6-text-to-video', 'request_id', 'pixverse_' .. id,
    'created_ms', created, 'attempts', '1')
  redis.call('ZADD', KEYS[1], created, id)
  redis.call('ZADD', KEYS[2], created, id)
  redis.call('ZADD', KEYS[3], future + i % 3600, id)
  redis.call('ZADD', KEYS[4], future + i % 3600, id)
end
return last - first + 1
"""


def populate(r: redis.Redis, first: int, last: int) -> None:
    script = r.register_script(_POPULATE_LUA)
    index_keys = [keys.ALL_JOBS, keys.status_index("submitted"), keys.DUE_POLL, keys.DUE_DEADLINE]
    now = time.time()
    for start in range(first, last + 1, CHUNK):
        stop = min(start + CHUNK - 1, last)
        script(keys=index_keys, args=[start, stop, now, FUTURE_SECONDS])


def arm_due(r: redis.Redis, stored: int) -> None:
    """Make 1,000 of the stored jobs due, each in the state its due set belongs to (untimed)."""
    past = time.time() - 1
    ids = [f"job_bench{i:08d}" for i in range(1, 4 * DUE_PER_KIND + 1)]
    kinds = [
        ("submitted", keys.DUE_POLL),
        ("submitting", keys.DUE_SUBMITTING),
        ("submit_unknown", keys.DUE_UNKNOWN),
        ("submitted", keys.DUE_DEADLINE),
    ]
    pipe = r.pipeline(transaction=False)
    for n, job_id in enumerate(ids):
        status, due_set = kinds[n // DUE_PER_KIND]
        pipe.persist(keys.job(job_id))
        pipe.hset(keys.job(job_id), mapping={"status": status, "attempts": "1"})
        pipe.hdel(keys.job(job_id), "completed_at", "error")
        pipe.delete(keys.job_events(job_id), keys.timeline(job_id))
        for other in keys.JOB_DUE_SETS:
            pipe.zrem(other, job_id)
        pipe.zadd(keys.DUE_DEADLINE, {job_id: past + FUTURE_SECONDS})
        pipe.zadd(due_set, {job_id: past})
    pipe.delete(keys.DUE_DELIVERY, steps.LOCK_KEY)
    pipe.execute()
    assert r.zcount(keys.DUE_DEADLINE, "-inf", past) == DUE_PER_KIND
    assert r.zcard(keys.ALL_JOBS) == stored


@contextmanager
def counting_sends() -> Iterator[list[int]]:
    sent = [0]
    original = enqueue.send

    def count(task_name: str, *args: str) -> bool:
        sent[0] += 1
        return True

    enqueue.send = count
    try:
        yield sent
    finally:
        enqueue.send = original


def measure(svc: Services, stored: int) -> list[float]:
    times = []
    with counting_sends() as sent:
        for _ in range(REPETITIONS):
            arm_due(svc.redis, stored)
            sent[0] = 0
            started = time.perf_counter()
            fanned = steps.fan_out(svc)
            handled = {step.name: steps.run_batch(svc, step.name) for step in steps.STEPS}
            times.append(time.perf_counter() - started)
            assert fanned is not None
            handled.pop("deliveries")  # the failed deadlines' events, due at once
            assert sum(handled.values()) == 4 * DUE_PER_KIND, handled
    return times


# ----------------------------------------------------------------------------- catch-up


def arm_backlog(r: redis.Redis) -> None:
    """20,000 due items, as a backlog after an outage leaves them (untimed)."""
    past = time.time() - 1
    pipe = r.pipeline(transaction=False)
    pipe.delete(*(queue for _, _, queue in CATCH_UP_SETS), steps.LOCK_KEY)
    for name, due_set, _ in CATCH_UP_SETS:
        pipe.delete(due_set)
        members = {f"{name}_{i:06d}": past - i % 600 for i in range(BACKLOG_PER_SET)}
        pipe.zadd(due_set, members)
    pipe.execute()


def bench_celery(url: str) -> Celery:
    """Sends go to the bench Redis as broker, as the product's do (enqueue.send)."""
    celery = Celery("bench")
    celery.config_from_object(celery_config(bench_settings(url)))
    celery.set_default()
    return celery


def drainer(
    url: str,
    now: float,
    start: Event,
    ready: multiprocessing.SimpleQueue,
    done: multiprocessing.SimpleQueue,
) -> None:
    """One reconcile worker slot: batch after batch of the backlog's sets until nothing is due.
    ``now`` is fixed: the handed-out members (leased, never polled here) must not come due again
    if the drain outlasts the lease on a busy machine."""
    bench_celery(url)
    r = redis.Redis.from_url(url, decode_responses=True)
    svc = build_services(bench_settings(url, reconcile_batch_size=500), connection=r)
    r.ping()
    ready.put(True)
    start.wait()
    handled = 0
    while True:
        handled_now = sum(steps.run_batch(svc, name, now) for name, _, _ in CATCH_UP_SETS)
        if not handled_now:
            break
        handled += handled_now
    done.put(handled)


def handed_out(r: redis.Redis) -> Counter[str]:
    """Every item published to the poll and delivery queues, counted."""
    seen: Counter[str] = Counter()
    for _, _, queue in CATCH_UP_SETS:
        for raw in r.lrange(queue, 0, -1):
            body = json.loads(base64.b64decode(json.loads(raw)["body"]))
            seen[body[0][0]] += 1
    return seen


def catch_up(url: str, r: redis.Redis, processes: int) -> float:
    """Due items drained per second by ``processes`` drainers at once."""
    arm_backlog(r)
    context = multiprocessing.get_context("spawn")
    start, ready, done = context.Event(), context.SimpleQueue(), context.SimpleQueue()
    now = time.time()
    procs = [
        context.Process(target=drainer, args=(url, now, start, ready, done))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get()
    started = time.perf_counter()
    start.set()
    per_drainer = [done.get() for _ in procs]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join()
    total = len(CATCH_UP_SETS) * BACKLOG_PER_SET
    seen = handed_out(r)
    assert sum(per_drainer) == total, per_drainer
    assert len(seen) == total, "an item was not handed out"
    assert set(seen.values()) == {1}, "an item was handed out twice"
    assert all(r.zcount(due_set, "-inf", now) == 0 for _, due_set, _ in CATCH_UP_SETS)
    rate = total / elapsed
    verdict = "meets" if rate >= TARGET_ITEMS_PER_SECOND else "MISSES"
    print(
        f"catch-up: {total:,} due items (polls + deliveries) drained by {processes} "
        f"drainer(s) in {elapsed:.2f} s: {rate:,.0f} due items/s "
        f"(per drainer {per_drainer}; each handed out once; {verdict} the target "
        f">= {TARGET_ITEMS_PER_SECOND:,}/s; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs)"
    )
    return rate


def main() -> int:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        # populating (50,000 jobs per Lua call) and freeing a million jobs outlast redis-py's
        # default 5 s socket timeout on a busy machine
        r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        svc = build_services(bench_settings(url, reconcile_batch_size=500), connection=r)
        results = {}
        for stored, first in ((SMALL, 1), (LARGE, SMALL + 1)):
            started = time.perf_counter()
            populate(r, first, stored)
            print(f"populated {stored:>9,} stored jobs ({time.perf_counter() - started:.1f} s)")
            times = measure(svc, stored)
            results[stored] = statistics.median(times)
            print(
                f"fan-out + a batch per set with {stored:>9,} stored, {4 * DUE_PER_KIND:,} due: "
                f"median {results[stored] * 1000:.1f} ms over {REPETITIONS} "
                f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
            )
        ratio = results[LARGE] / results[SMALL]
        verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
        print(
            f"ratio 1,000,000 / 10,000 stored: {ratio:.2f} ({verdict} the target < {TARGET_RATIO})"
        )
        print(f"redis used_memory: {r.info('memory')['used_memory_human']}")
        r.flushdb(asynchronous=True)  # the million jobs: freed in the background
        for processes in DRAINERS:
            catch_up(url, r, processes)
        return 0
    finally:
        stack.stop_all()


if __name__ == "__main__":
    sys.exit(main())
