"""``make bench-pipeline``: the Procfile deployment under a fixed offered load, end to end.

Separate processes, as in production: gunicorn (web), the prefork Celery worker, the thread-pool
delivery worker and beat, with the Procfile's settings; a private redis-server; the Pixazo
simulator and a consumer that verifies every signature. Jobs are offered open-loop at each rate
(60/s and 100/s by default) for 20 s, then the run waits (bounded) for the deployment to drain.

Printed per rate: jobs offered/accepted, lost (accepted, no event in time), double (an event
delivered twice with distinct ids for the same job and type, or a job charged twice at the
simulator), events once; the event lag from the simulator's terminal callback to the consumer's
receipt (p50/p95/p99); CPU seconds per job of each process tree (psutil, children included) and
of the simulator + consumer (the yardstick: they do the three HTTP exchanges of a job too);
Redis bytes and keys per finished job, and Redis commands per job (INFO commandstats, calls made
inside Lua scripts included); the backlog at mid-run and at the end of the offer and its growth.

The targets (issue 12) are printed next to the figures, never asserted.
Knobs the Procfile leaves at their defaults but a benchmark must raise: the shared submit
limiter and the per-client intake limit (defaults 20/s and 600/min would be what is measured).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from benchmarks import cpu, pyspy
from benchmarks.loadgen import Offered, offer
from devtools.devstack import Orchestrator, Stack, base_env
from orchestrator.core import enqueue, keys
from orchestrator.core.clients import ClientStore
from orchestrator.core.clock import parse_iso

# kombu's Redis transport keeps delivered-but-unacked messages in this hash (the bench runs
# on a Redis broker).
KOMBU_UNACKED = "unacked"
RATES = (60, 100)
OFFER_SECONDS = 20.0
DRAIN_SECONDS = 40.0
SAMPLE_EVERY_SECONDS = 0.5
# The simulated job: queued then processing, no jitter, so the terminal callback leaves at
# created + QUEUED + PROCESSING, which is what the lag is measured from.
SIM_QUEUED_SECONDS = 0.5
SIM_PROCESSING_SECONDS = 0.5
# The Procfile's defaults: WEB_CONCURRENCY, WORKER_CONCURRENCY, DELIVERY_CONCURRENCY.
WEB_WORKERS, WEB_THREADS = 2, 8
WORKER_CONCURRENCY = 4
DELIVERY_THREADS = 32
BENCH_ENV = {
    "ORCHESTRATOR_SUBMIT_RATE_PER_SECOND": "1000",
    "ORCHESTRATOR_SUBMIT_CONCURRENCY": "64",
    "ORCHESTRATOR_CLIENT_RATE_LIMIT_PER_MINUTE": "1000000",
}
JOB_BODY: dict[str, Any] = {
    "model": "pixverse-v6-text-to-video",
    "input": {"prompt": "a red fox at dawn"},
}
PRODUCT = ("web", "worker", "delivery", "beat")
YARDSTICK = ("sim", "consumer")
PROFILED = ("web", "worker", "delivery")
PROFILE_SECONDS = 15
TERMINAL_STATUSES = ("completed", "failed", "canceled")
# Targets of issue 12.
TARGET_CPU_RATIO = 1.5
TARGET_LAG_P99_MS = 100.0
TARGET_LAG_RATE = 60
TARGET_BYTES_PER_JOB = 2048
TARGET_BACKLOG_RATE = 100
# A backlog growing by more than this share of the offered rate (per second, over the second
# half of the offer) is growing; less is noise from batching and beat ticks.
GROWTH_SHARE = 0.05
MIN_SAMPLES = 4
PERCENT = 100
TOP_COMMANDS = 20


def checkout_pythonpath() -> str:
    """PYTHONPATH for the processes a bench starts: they run in a scratch directory, and must
    import this checkout (benchmarks/ is not an installed package), whatever is installed."""
    root = str(Path(__file__).resolve().parent.parent)
    return os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))


@dataclass
class Deployment:
    stack: Stack
    orch: Orchestrator
    r: redis.Redis
    pids: dict[str, int]


@contextmanager
def deployment() -> Iterator[Deployment]:
    stack = Stack()
    try:
        redis_proc, url = stack.start_redis()
        env = base_env(url, **BENCH_ENV, PYTHONPATH=checkout_pythonpath())
        orch = Orchestrator(stack, url, env)
        orch.start_sim()
        orch.start_consumer()
        orch.start_web(workers=WEB_WORKERS, threads=WEB_THREADS)
        orch.start_delivery_worker(DELIVERY_THREADS)
        worker = orch.start_worker(concurrency=WORKER_CONCURRENCY)
        beat = orch.start_beat()
        requests.post(
            f"{orch.sim_url}/_sim/config",
            json={
                "queued_seconds": SIM_QUEUED_SECONDS,
                "processing_seconds": SIM_PROCESSING_SECONDS,
                "jitter": 0.0,
            },
            timeout=5,
        ).raise_for_status()
        assert orch.web is not None
        assert orch.delivery is not None
        by_name = {p.name: p.popen.pid for p in stack.procs}
        pids = {
            "web": orch.web.popen.pid,
            "worker": worker.popen.pid,
            "delivery": orch.delivery.popen.pid,
            "beat": beat.popen.pid,
            "sim": by_name["sim"],
            "consumer": by_name["consumer"],
            "redis": redis_proc.popen.pid,
        }
        yield Deployment(stack, orch, redis.Redis.from_url(url, decode_responses=True), pids)
    finally:
        stack.stop_all()


# ------------------------------------------------------------------------------------ backlog


def backlog(r: redis.Redis) -> dict[str, int]:
    """Messages waiting in each queue, held unacked, and work past its due time in each set."""
    now = time.time()
    pipe = r.pipeline(transaction=False)
    for queue in enqueue.ALL_QUEUES:
        pipe.llen(queue)
    pipe.hlen(KOMBU_UNACKED)
    for due_set in keys.DUE_SETS:
        pipe.zcount(due_set, "-inf", now)
    for due_set in (keys.DUE_DELIVERY, keys.DUE_CALLBACK):
        pipe.zcard(due_set)
    values = [int(v) for v in pipe.execute()]
    names = [
        *(f"queue:{q}" for q in enqueue.ALL_QUEUES),
        "unacked",
        *(f"overdue:{s}" for s in keys.DUE_SETS),
        f"all:{keys.DUE_DELIVERY}",
        f"all:{keys.DUE_CALLBACK}",
    ]
    return dict(zip(names, values, strict=True))


def finished_jobs(r: redis.Redis, client_id: str) -> int:
    pipe = r.pipeline(transaction=False)
    for status in TERMINAL_STATUSES:
        pipe.zcard(keys.client_status_index(client_id, status))
    return sum(int(n) for n in pipe.execute())


def drained(r: redis.Redis, client_id: str, accepted: int) -> bool:
    return finished_jobs(r, client_id) >= accepted and not any(backlog(r).values())


def command_calls(r: redis.Redis) -> Counter[str]:
    """Calls per Redis command so far (INFO commandstats): round trips are CPU on both sides."""
    stats = r.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def redis_footprint(r: redis.Redis) -> tuple[int, int]:
    """(used_memory bytes, keys)."""
    return int(r.info("memory")["used_memory"]), int(r.dbsize())


# -------------------------------------------------------------------------------------- run


@dataclass
class Run:
    rate: int
    offered: Offered
    drain_seconds: float
    drained: bool
    cpu: dict[str, float]
    memory_bytes: int
    new_keys: int
    finished: int
    commands: Counter[str]
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    sim_requests: list[dict[str, Any]] = field(default_factory=list)
    sim_stats: dict[str, Any] = field(default_factory=dict)


def start_profiles(dep: Deployment, rate: int, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on web, worker and delivery (and their pool children)."""
    return [pyspy.record(dep.pids[n], PROFILE_SECONDS, out / f"{n}-{rate}.txt") for n in PROFILED]


def run_rate(
    dep: Deployment, rate: int, seconds: float, drain_bound: float, profile: Path | None
) -> Run:
    orch, r = dep.orch, dep.r
    name = f"bench{rate}"
    client, api_key = ClientStore(r).create(name, f"{orch.consumer_url}/hooks/{name}")
    requests.post(
        f"{orch.consumer_url}/_consumer/config",
        json={"name": name, "secret": client.webhook_secrets[0]},
        timeout=5,
    ).raise_for_status()
    url = f"{orch.web_url}/v1/jobs"
    headers = {"Authorization": f"Bearer {api_key}"}

    def send(session: requests.Session) -> tuple[int, str | None]:
        answer = session.post(url, json=JOB_BODY, headers=headers, timeout=10)
        return answer.status_code, answer.json().get("id") if answer.status_code == 202 else None

    samples: list[tuple[float, dict[str, int]]] = []
    memory_before, keys_before = redis_footprint(r)
    calls_before = command_calls(r)
    cpu_before = cpu.snapshot(dep.pids)
    spies = start_profiles(dep, rate, profile) if profile else []
    offered = offer(rate, seconds, send, lambda t: samples.append((t, backlog(r))))
    samples.append((seconds, backlog(r)))
    accepted = len(offered.accepted_ids)
    drain_start = time.monotonic()
    while not (done := drained(r, client.id, accepted)):
        if time.monotonic() - drain_start > drain_bound:
            break
        time.sleep(SAMPLE_EVERY_SECONDS)
    drain_seconds = time.monotonic() - drain_start
    cpu_used = cpu.delta(cpu_before, cpu.snapshot(dep.pids))
    commands = command_calls(r) - calls_before
    for spy in spies:
        spy.wait(PROFILE_SECONDS * 4)
    time.sleep(1.0)  # a last event may still be on its way from the delivery worker
    memory_after, keys_after = redis_footprint(r)
    events = requests.get(
        f"{orch.consumer_url}/_consumer/events", params={"name": name}, timeout=30
    ).json()
    return Run(
        rate=rate,
        offered=offered,
        drain_seconds=drain_seconds,
        drained=done,
        cpu=cpu_used,
        memory_bytes=memory_after - memory_before,
        new_keys=keys_after - keys_before,
        finished=finished_jobs(r, client.id),
        commands=commands,
        samples=samples,
        events=events,
        sim_requests=requests.get(f"{orch.sim_url}/_sim/requests", timeout=30).json(),
        sim_stats=requests.get(f"{orch.sim_url}/_sim/stats", timeout=10).json(),
    )


# ----------------------------------------------------------------------------------- report


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5, 0.95, 0.99), interpolated; NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    cuts = statistics.quantiles(values, n=PERCENT, method="inclusive")
    return cuts[round(share * PERCENT) - 1]


def job_of_webhook_url(url: str) -> str:
    """``.../webhooks/pixazo/{job_id}/{token}`` -> job_id."""
    return url.rstrip("/").split("/")[-2]


def delivery_figures(run: Run) -> dict[str, Any]:
    accepted = set(run.offered.accepted_ids)
    ok = [e for e in run.events if e["verified"] and 200 <= e["status"] < 300]
    event_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    receipts: Counter[tuple[str, str]] = Counter()
    first_receipt: dict[str, str] = {}
    for e in ok:
        event_ids[(e["job_id"], e["type"])].add(e["event_id"])
        receipts[(e["job_id"], e["type"])] += 1
        first_receipt.setdefault(e["job_id"], e["received_at"])
    charged = Counter(
        job_of_webhook_url(q["webhook_url"])
        for q in run.sim_requests
        if q.get("webhook_url") and job_of_webhook_url(q["webhook_url"]) in accepted
    )
    return {
        "lost": len(accepted - set(first_receipt)),
        "double_events": sum(1 for ids in event_ids.values() if len(ids) > 1),
        "charged_twice": sum(1 for n in charged.values() if n > 1),
        "events_once": sum(1 for n in receipts.values() if n == 1),
        "received_again": sum(n - 1 for n in receipts.values() if n > 1),
        "unverified": sum(1 for e in run.events if not e["verified"]),
        "lags_ms": lags_ms(run, first_receipt),
    }


def lags_ms(run: Run, first_receipt: dict[str, str]) -> list[float]:
    """Per job: consumer receipt minus the moment the simulator's terminal callback was due."""
    phases = SIM_QUEUED_SECONDS + SIM_PROCESSING_SECONDS
    lags = []
    for q in run.sim_requests:
        url = q.get("webhook_url")
        received = first_receipt.get(job_of_webhook_url(url)) if url else None
        created, got = parse_iso(q["created_at"]), parse_iso(received)
        if created is None or got is None:
            continue
        lags.append(((got - created).total_seconds() - phases) * 1000.0)
    return lags


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(run: Run) -> None:
    off = run.offered
    accepted = len(off.accepted_ids)
    per_job = max(accepted, 1)
    print(f"\n=== {run.rate} jobs/s offered for {off.planned / run.rate:.0f} s ===")
    print(
        f"offered {off.planned}, accepted {accepted}, answers {dict(sorted(off.answered.items()))}"
        f", errors {dict(off.errors)}, worst send delay {off.max_send_delay * 1000:.0f} ms"
    )
    print(f"drained: {run.drained} after {run.drain_seconds:.1f} s; finished jobs {run.finished}")
    if not run.drained:
        print("NOT DRAINED: per-job CPU is per accepted job, so it undercounts (unfinished work)")
    d = delivery_figures(run)
    print(
        f"lost {d['lost']} (not finished when the bound ran out: {accepted - run.finished}), "
        f"double {d['double_events']} (events) + {d['charged_twice']} "
        f"(charged twice), events once {d['events_once']}/{accepted}, "
        f"received again (same id) {d['received_again']}, unverified {d['unverified']}"
    )
    lags = d["lags_ms"]
    p50, p95, p99 = (percentile(lags, s) for s in (0.5, 0.95, 0.99))
    target = f"target p99 <= {TARGET_LAG_P99_MS:.0f} ms at {TARGET_LAG_RATE}/s"
    lag_ok = verdict(p99 <= TARGET_LAG_P99_MS) if run.rate == TARGET_LAG_RATE else "-"
    print(
        f"event lag (sim terminal callback -> consumer): p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
        f"p99 {p99:.0f} ms over {len(lags)} jobs   [{target}: {lag_ok}]"
    )
    product = sum(run.cpu[n] for n in PRODUCT)
    yardstick = sum(run.cpu[n] for n in YARDSTICK)
    for n in (*PRODUCT, "redis", *YARDSTICK):
        print(f"  cpu {n:9s} {run.cpu[n]:7.2f} s  {run.cpu[n] / per_job * 1000:6.2f} ms/job")
    ratio = product / yardstick if yardstick else float("nan")
    print(
        f"cpu/job: product {product / per_job * 1000:.2f} ms (+ redis "
        f"{run.cpu['redis'] / per_job * 1000:.2f}), yardstick sim+consumer "
        f"{yardstick / per_job * 1000:.2f} ms, ratio {ratio:.2f}x   "
        f"[target <= {TARGET_CPU_RATIO}x: {verdict(ratio <= TARGET_CPU_RATIO)}]"
    )
    finished = max(run.finished, 1)
    per_job_bytes = run.memory_bytes / finished
    print(
        f"redis: {per_job_bytes:.0f} bytes and {run.new_keys / finished:.1f} keys per finished job "
        f"(used_memory delta {run.memory_bytes} over {run.finished} jobs)   "
        f"[target <= {TARGET_BYTES_PER_JOB} B: {verdict(per_job_bytes <= TARGET_BYTES_PER_JOB)}]"
    )
    top = ", ".join(f"{c} {n / per_job:.1f}" for c, n in run.commands.most_common(TOP_COMMANDS))
    print(f"redis commands per job: {run.commands.total() / per_job:.1f} ({top})")
    report_backlog(run)


def report_backlog(run: Run) -> None:
    """Work waiting at mid-offer and at the end of the offer, and how fast the total grew over
    the second half (least squares): a deployment that keeps up holds it flat."""
    if len(run.samples) < MIN_SAMPLES:
        return
    end_time = run.samples[-1][0]
    middle = min(run.samples, key=lambda s: abs(s[0] - end_time / 2))
    end = run.samples[-1]
    second_half = [(t, sum(b.values())) for t, b in run.samples if t >= middle[0]]
    slope = statistics.linear_regression(*zip(*second_half, strict=True)).slope
    grown = slope > GROWTH_SHARE * run.rate
    busy = {k: v for k, v in end[1].items() if v or middle[1][k]}
    rows = ", ".join(f"{k} {middle[1][k]}->{v}" for k, v in busy.items()) or "all empty"
    applies = verdict(not grown) if run.rate >= TARGET_BACKLOG_RATE else "-"
    print(
        f"backlog mid ({middle[0]:.0f} s) -> end of offer ({end[0]:.0f} s): {rows}; "
        f"growing {slope:.0f}/s   [target: no growing backlog at {TARGET_BACKLOG_RATE}/s: "
        f"{applies}]"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="jobs/s, comma list")
    parser.add_argument("--seconds", type=float, default=OFFER_SECONDS)
    parser.add_argument("--drain", type=float, default=DRAIN_SECONDS, help="bound, seconds")
    parser.add_argument("--profile", type=Path, help="py-spy each product process into DIR")
    args = parser.parse_args(argv)
    rates = [int(x) for x in args.rates.split(",")]
    print(f"load average at start: {os.getloadavg()}; cpus {os.cpu_count()}")
    started = time.monotonic()
    with deployment() as dep:
        print(f"deployment up in {time.monotonic() - started:.1f} s: {dep.pids}")
        for rate in rates:
            report(run_rate(dep, rate, args.seconds, args.drain, args.profile))
            print(f"load average: {os.getloadavg()}")
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
