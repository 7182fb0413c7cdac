"""``python -m benchmarks.bench_enqueue``: sends per second of ``enqueue.send`` (a real Celery
publish to a private redis-server) with kombu's stock Redis transport ("old": a new
``redis.Redis`` client per publish) and with ours (orchestrator/core/kombu_redis.py: one client
per channel), alternating rounds in one run so that a shared machine's drift hits both; prints
the ratio new/old. Also from ``--threads`` threads at once, as gunicorn's gthread workers send.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import redis
from celery import Celery

from benchmarks.common import bench_settings
from devtools.devstack import Stack
from orchestrator.celery_app import celery_config
from orchestrator.core import enqueue

SENDS = 3000
ROUNDS = 3
THREADS = 8


def celery_for(url: str, stock_transport: bool) -> Celery:
    config = celery_config(bench_settings(url))
    if stock_transport:
        config["broker_transport"] = None
    celery = Celery(f"bench-{'old' if stock_transport else 'new'}")
    celery.config_from_object(config)
    return celery


def sends_per_second(celery: Celery, sends: int, threads: int) -> float:
    celery.set_default()
    each = sends // threads

    def sender() -> None:
        for i in range(each):
            if not enqueue.send(enqueue.SUBMIT, f"job_{i}"):
                raise RuntimeError("a send failed")

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return each * threads / (time.perf_counter() - started)


def compare(
    label: str, old: Celery, new: Celery, sends: int, threads: int, flush: Callable[[], None]
) -> None:
    rates: dict[str, list[float]] = {"old": [], "new": []}
    for celery in (old, new):  # warm up: connections, declarations
        sends_per_second(celery, threads * 20, threads)
    for _ in range(ROUNDS):
        for name, celery in (("old", old), ("new", new)):
            flush()
            rates[name].append(sends_per_second(celery, sends, threads))
    med_old, med_new = statistics.median(rates["old"]), statistics.median(rates["new"])
    print(
        f"{label:<12} old {med_old:8.0f} sends/s  new {med_new:8.0f} sends/s  "
        f"ratio new/old {med_new / med_old:.2f}  (medians of {ROUNDS} rounds of {sends})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=SENDS)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    stack = Stack()
    try:
        _, url = stack.start_redis()
        r = redis.Redis.from_url(url)
        old, new = celery_for(url, stock_transport=True), celery_for(url, stock_transport=False)
        compare("1 thread", old, new, args.sends, 1, r.flushdb)
        compare(f"{args.threads} threads", old, new, args.sends, args.threads, r.flushdb)
    finally:
        stack.stop_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
