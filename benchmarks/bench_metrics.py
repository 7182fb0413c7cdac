"""``make bench-metrics``: what recording a metric costs on the hot path.

Compares, per call: nothing (an empty function call), ``Counter.inc`` with two labels,
``Histogram.observe`` (two dictionary updates), and the alternative the design avoids, one Redis
``HINCRBYFLOAT`` round trip per event (to a private redis-server on loopback); then the flush
of a realistic batch. Prints medians of several rounds and ratios, never asserts a time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import redis

from devtools.devstack import Stack
from orchestrator.core import keys
from orchestrator.core.metrics import LATENCY_BUCKETS, Counter, Histogram, Recorder

CALLS = 200_000
REDIS_CALLS = 5_000
ROUNDS = 5


def per_call(action: Callable[[], object], calls: int) -> float:
    """Median seconds per call over ROUNDS rounds of ``calls`` calls."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            action()
        rounds.append((time.perf_counter() - started) / calls)
    return statistics.median(rounds)


def main() -> None:
    stack = Stack()
    try:
        _, url = stack.start_redis()
        r = redis.Redis.from_url(url, decode_responses=True)
        recorder = Recorder(interval=3600.0)  # flushed by hand below, not by its thread
        recorder.configure(r)
        counter = Counter("bench_submits_total", "", ("model", "outcome"), recorder=recorder)
        histogram = Histogram("bench_seconds", "", LATENCY_BUCKETS, recorder=recorder)

        def nothing() -> None:
            return None

        base = per_call(nothing, CALLS)
        inc = per_call(lambda: counter.inc("pixverse-v6-text-to-video", "accepted"), CALLS)
        observe = per_call(lambda: histogram.observe(0.042), CALLS)
        key = keys.metric("bench_direct_total")
        direct = per_call(lambda: r.hincrbyfloat(key, "x", 1.0), REDIS_CALLS)
        recorder.discard()
        for model in range(6):
            for outcome in range(6):
                counter.inc(f"m{model}", f"o{outcome}")
        for value in (0.001, 0.02, 0.3, 4.0, 60.0):
            histogram.observe(value)
        fields = len(recorder.pending())
        started = time.perf_counter()
        recorder.flush()
        flush = time.perf_counter() - started
        print(f"empty call            {base * 1e9:8.0f} ns")
        print(f"Counter.inc           {inc * 1e9:8.0f} ns  ({inc / base:.1f}x an empty call)")
        print(f"Histogram.observe     {observe * 1e9:8.0f} ns  ({observe / base:.1f}x)")
        print(f"Redis HINCRBYFLOAT    {direct * 1e9:8.0f} ns  ({direct / inc:.0f}x Counter.inc)")
        print(f"one flush, {fields} fields {flush * 1e3:6.2f} ms  (once a second per process)")
    finally:
        stack.stop_all()


if __name__ == "__main__":
    main()
