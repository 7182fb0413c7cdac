"""``make bench-reconcile``: one reconcile tick with 10,000 and with 1,000,000 stored jobs, each
time with 1,000 jobs due, on a private redis-server; prints the median tick times and their ratio.

The design target is a ratio under 1.5: a tick reads only what is due (bounded ZRANGEBYSCORE ...
LIMIT on the due-time sets), so the number of jobs stored should not matter. Every stored job
sits in the poll and deadline due sets with a future score (the worst case for those sets: in
production most stored jobs are terminal and sit in none). The 1,000 due jobs are spread over
four kinds of work, each doing its real Redis work (Lua state transitions included):
polls handed out, submits of unknown outcome resolved, lost submits expired, deadlines failed.
``enqueue.send`` is replaced by a counter, so what is timed is the tick's own Redis work.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from benchmarks.common import bench_settings
from devtools.devstack import Stack
from orchestrator.core import enqueue, keys
from orchestrator.reconcile import steps
from orchestrator.services import Services, build_services

SMALL, LARGE = 10_000, 1_000_000
DUE_PER_KIND = 250  # x 4 kinds = 1,000 due per tick
REPETITIONS = 9
CHUNK = 50_000  # jobs written per Lua call while populating
FUTURE_SECONDS = 86_400.0
TARGET_RATIO = 1.5

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
            report = steps.tick(svc)
            times.append(time.perf_counter() - started)
            assert report is not None
            handled = sum(v for k, v in report.counts.items() if k != "deliveries")
            assert handled == 4 * DUE_PER_KIND, report.counts
    return times


def main() -> int:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        r = redis.Redis.from_url(url, decode_responses=True)
        svc = build_services(bench_settings(url, reconcile_batch_size=500), connection=r)
        results = {}
        for stored, first in ((SMALL, 1), (LARGE, SMALL + 1)):
            started = time.perf_counter()
            populate(r, first, stored)
            print(f"populated {stored:>9,} stored jobs ({time.perf_counter() - started:.1f} s)")
            times = measure(svc, stored)
            results[stored] = statistics.median(times)
            print(
                f"tick with {stored:>9,} stored, {4 * DUE_PER_KIND:,} due: "
                f"median {results[stored] * 1000:.1f} ms over {REPETITIONS} "
                f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
            )
        ratio = results[LARGE] / results[SMALL]
        verdict = "meets" if ratio < TARGET_RATIO else "MISSES"
        print(
            f"ratio 1,000,000 / 10,000 stored: {ratio:.2f} ({verdict} the target < {TARGET_RATIO})"
        )
        print(f"redis used_memory: {r.info('memory')['used_memory_human']}")
        return 0
    finally:
        stack.stop_all()


if __name__ == "__main__":
    sys.exit(main())
