"""``make bench-floor``: what the fixed shape costs per job before any product logic runs.

Issue 12 asks for product CPU per job of at most 1.5x the yardstick (the Pixazo simulator and the
consumer). A job crosses the shape's parts a fixed number of times: two requests served by
gunicorn + Flask that each publish one Celery task (the intake; the callback, which enqueues the
delivery), one hop through the prefork worker (the submit), one through the thread-pool delivery
worker, and two outbound POSTs (to Pixazo, to the consumer). This bench measures those parts
with no product code in them (benchmarks/floor_app.py: the product's Celery configuration, views
that only read the body and publish), at the pipeline's offered rate, and, in the same run, the
pipeline itself (bench_pipeline at 60 jobs/s) for the yardstick and the product. It prints the
floor per job as a ratio to the yardstick: a floor above the target means no change inside the
shape can meet it. The floor leaves out every Redis write a job needs, so it is a lower bound.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
import requests

from benchmarks import cpu
from benchmarks.bench_http import TARGETS as HTTP_TARGETS
from benchmarks.bench_pipeline import (
    BENCH_ENV,
    DELIVERY_THREADS,
    PRODUCT,
    TARGET_CPU_RATIO,
    WEB_THREADS,
    WEB_WORKERS,
    WORKER_CONCURRENCY,
    YARDSTICK,
    checkout_pythonpath,
    deployment,
    run_rate,
)
from benchmarks.loadgen import offer
from devtools.devstack import Stack, base_env, free_port

PREFORK_QUEUE = "floor-prefork"  # consumed by a prefork worker, as the Procfile's worker
THREADS_QUEUE = "floor-threads"  # consumed by a thread-pool worker, as the Procfile's delivery
FLOOR_APP = "benchmarks.floor_app"
RATE = 60  # jobs (or requests) per second: the pipeline's lag target rate
SECONDS = 20.0
DRAIN_SECONDS = 30.0
POLL_SECONDS = 0.2
KOMBU_UNACKED = "unacked"
MS = 1000.0


@dataclass
class Floor:
    stack: Stack
    web_url: str
    r: redis.Redis
    pids: dict[str, int]


def _worker(stack: Stack, env: dict[str, str], name: str, queue: str, pool: str, c: int) -> int:
    argv = [stack.python, "-m", "celery", "-A", f"{FLOOR_APP}:celery", "worker", "-Q", queue]
    argv += ["-P", pool, "-c", str(c), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    proc = stack.spawn(name, [*argv, "-l", "INFO"], env)  # the Procfile's log level
    stack.wait_log(proc, " ready.")
    return proc.popen.pid


@contextmanager
def floor_parts() -> Iterator[Floor]:
    stack = Stack()
    try:
        redis_proc, url = stack.start_redis()
        env = base_env(url, **BENCH_ENV, PYTHONPATH=checkout_pythonpath())
        port = free_port()
        argv = [stack.python, "-m", "gunicorn", "-b", f"127.0.0.1:{port}"]
        argv += ["-w", str(WEB_WORKERS), "--threads", str(WEB_THREADS), f"{FLOOR_APP}:app"]
        web = stack.spawn("floor-web", argv, env)
        web_url = f"http://127.0.0.1:{port}"
        stack.wait_http(web, f"{web_url}/bare")
        pids = {
            "web": web.popen.pid,
            "prefork": _worker(stack, env, "prefork", PREFORK_QUEUE, "prefork", WORKER_CONCURRENCY),
            "threads": _worker(stack, env, "threads", THREADS_QUEUE, "threads", DELIVERY_THREADS),
            "redis": redis_proc.popen.pid,
        }
        time.sleep(2.0)  # workers settle (pool children forked, consumers subscribed)
        yield Floor(stack, web_url, redis.Redis.from_url(url, decode_responses=True), pids)
    finally:
        stack.stop_all()


def _idle(r: redis.Redis) -> bool:
    pipe = r.pipeline(transaction=False)
    pipe.llen(PREFORK_QUEUE)
    pipe.llen(THREADS_QUEUE)
    pipe.hlen(KOMBU_UNACKED)
    return not any(pipe.execute())


def measure(floor: Floor, path: str, rate: int, seconds: float) -> tuple[dict[str, float], int]:
    """CPU ms per request of each part while ``path`` is offered at ``rate``, tasks drained."""
    url = f"{floor.web_url}{path}"

    def send(session: requests.Session) -> tuple[int, str | None]:
        return session.post(url, data=b'{"model":"floor"}', timeout=10).status_code, None

    before = cpu.snapshot(floor.pids)
    offered = offer(rate, seconds, send, lambda _t: None)
    deadline = time.monotonic() + DRAIN_SECONDS
    while not _idle(floor.r) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    used = cpu.delta(before, cpu.snapshot(floor.pids))
    ok = offered.answered.get(200, 0)
    return {name: MS * seconds_used / max(ok, 1) for name, seconds_used in used.items()}, ok


def pipeline_per_job(rate: int, seconds: float) -> tuple[float, float]:
    """(product, yardstick) CPU ms per job of one bench_pipeline run at ``rate``."""
    with deployment() as dep:
        run = run_rate(dep, rate, seconds, DRAIN_SECONDS, None)
    jobs = max(run.finished, 1)
    product = sum(run.cpu[n] for n in PRODUCT) * MS / jobs
    yardstick = sum(run.cpu[n] for n in YARDSTICK) * MS / jobs
    return product, yardstick


def floor_parts_per_job(per: dict[str, dict[str, float]]) -> list[tuple[str, int, float]]:
    """(what, times a job needs it, CPU ms) from the measured scenarios' ms per request; a
    part needed 0 times is shown for comparison only."""
    threads_hop = per["threads"]["threads"]
    return [
        ("a bare Flask request on the Procfile's gunicorn line", 0, per["bare"]["web"]),
        ("a request that publishes one task (intake, callback)", 2, per["prefork"]["web"]),
        ("a task's hop through the prefork worker (submit)", 1, per["prefork"]["prefork"]),
        ("a task's hop through the thread-pool worker (delivery)", 1, threads_hop),
        (
            "one outbound keep-alive POST (to Pixazo, to a consumer)",
            2,
            max(per["post"]["threads"] - threads_hop, 0.0),
        ),
    ]


def line(label: str, value: float, note: str = "") -> None:
    print(f"  {label:<52} {value:7.2f} ms {note}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    rate, seconds = args.rate, args.seconds
    print(f"load average at start: {os.getloadavg()}; cpus {os.cpu_count()}")
    product, yardstick = pipeline_per_job(rate, seconds)
    print(f"\npipeline at {rate}/s: product {product:.2f} ms/job, yardstick {yardstick:.2f} ms/job")
    parts: dict[str, Callable[[Floor], tuple[dict[str, float], int]]] = {
        "bare": lambda f: measure(f, "/bare", rate, seconds),
        "prefork": lambda f: measure(f, "/publish/prefork", rate, seconds),
        "threads": lambda f: measure(f, "/publish/threads", rate, seconds),
        "post": lambda f: measure(f, f"/publish/threads?post={f.web_url}/bare", rate, seconds),
    }
    with floor_parts() as floor:
        got = {name: run(floor) for name, run in parts.items()}
    for name, (per, ok) in got.items():
        figures = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        print(f"{name}: {ok} requests answered; CPU ms per request: {figures}")
    print(f"\nfloor per job at {rate}/s (CPU, no product code, no Redis writes):")
    floor_ms = 0.0
    for label, times, ms in floor_parts_per_job({name: per for name, (per, _ok) in got.items()}):
        floor_ms += times * ms
        line(f"x{times} {label}" if times else label, ms)
    line("floor", floor_ms)
    line("yardstick (simulator + consumer, same run)", yardstick)
    line("product (bench_pipeline, same run)", product)
    ratio = floor_ms / yardstick
    verdict = "the target is under the floor" if ratio > TARGET_CPU_RATIO else "room under target"
    print(
        f"floor / yardstick {ratio:.2f}x; product / yardstick {product / yardstick:.2f}x; "
        f"product / floor {product / floor_ms:.2f}x   [target product <= "
        f"{TARGET_CPU_RATIO}x yardstick: {verdict}]"
    )
    bare, publishing = got["bare"][0]["web"], got["prefork"][0]["web"]
    print(
        f"a request that publishes one task costs {publishing / bare:.2f}x a bare one: a view "
        f"that does, CPU-bound, serves at most {bare / publishing:.2f}x bare Flask's requests/s "
        f"(bench-http's intake target: {HTTP_TARGETS['intake']}x)"
    )


if __name__ == "__main__":
    main()
