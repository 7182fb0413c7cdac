"""``make bench-http``: requests/s of the intake and the Pixazo receiver against a bare Flask view,
each served by the Procfile's gunicorn line (2 workers x 8 threads) and driven by ``wrk`` with
the same threads, connections and duration.

Scenarios: (a) the bare view (benchmarks/bare_app.py), first and again last so drift on a shared
machine shows; (b) ``POST /v1/jobs`` with a valid body (no Celery worker runs: the submit
messages wait in Redis); (c) one callback repeated: the first applies, the rest are duplicates;
(d) first callbacks: each request is the first terminal callback of a distinct job prepared in
``submitted`` with its request id (as many jobs as (c)'s rate says (d) can reach).

The targets (issue 12) are printed next to the ratios, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks import pyspy
from benchmarks.bench_pipeline import (
    BENCH_ENV,
    JOB_BODY,
    WEB_THREADS,
    WEB_WORKERS,
    checkout_pythonpath,
)
from devtools.devstack import Stack, base_env, free_port
from orchestrator.core.clients import ClientStore
from orchestrator.core.config import load_settings
from orchestrator.core.tokens import callback_token
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.services import Services, build_services

WRK_SCRIPT = Path(__file__).parent / "wrk" / "replay.lua"
WRK_THREADS = 2
WRK_CONNECTIONS = 16
SECONDS = 10
MODEL = JOB_BODY["model"]
# Jobs prepared for (d): (c)'s requests in one run, times this (a first callback does all a
# duplicate does and more, but a shared machine's noise can make it look as fast); a run that
# still runs out of fresh jobs says so.
FIRST_JOBS_HEADROOM = 1.5
MAX_FIRST_JOBS = 30_000
REQUEST_ID_TTL_SECONDS = 3600
TARGETS = {"intake": 0.4, "duplicate callback": 0.6, "first callback": 0.5}


@dataclass
class Result:
    name: str
    rps: float
    non_2xx: int
    errors: str
    replay: str
    wrapped: bool  # some line was sent twice by one thread (for (d): not only first callbacks)


def gunicorn_argv(port: int, app: str) -> list[str]:
    """The Procfile's web line (workers, threads), bound to loopback."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(WEB_WORKERS),
        "--threads",
        str(WEB_THREADS),
        app,
    ]


def serve(stack: Stack, name: str, app: str, env: dict[str, str]) -> tuple[str, int]:
    """(base URL, gunicorn master pid)."""
    port = free_port()
    proc = stack.spawn(name, gunicorn_argv(port, app), env)
    url = f"http://127.0.0.1:{port}"
    stack.wait_http(proc, f"{url}/healthz" if app.startswith("orchestrator") else url)
    return url, proc.popen.pid


def wrk(
    name: str,
    base_url: str,
    lines: list[str],
    workdir: Path,
    args: argparse.Namespace,
    auth: str,
    profile_pid: int | None = None,
) -> Result:
    """One wrk run; with ``--profile DIR`` and ``profile_pid``, py-spy samples that process tree
    for the run's duration into DIR/<name>.txt."""
    spy = None
    if args.profile and profile_pid:
        output = args.profile / f"http-{name.replace(' ', '-')}.txt"
        spy = pyspy.record(profile_pid, args.seconds, output)
    listing = workdir / f"{name.replace(' ', '-')}.tsv"
    listing.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "BENCH_WRK_FILE": str(listing),
        "BENCH_WRK_AUTH": auth,
        "BENCH_WRK_THREADS": str(args.threads),
    }
    argv = [
        args.wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "-s",
        str(WRK_SCRIPT),
        base_url,
    ]
    out = subprocess.run(  # noqa: S603 (our argv, loopback only)
        argv, env=env, capture_output=True, text=True, check=True, timeout=args.seconds + 60
    ).stdout
    if spy is not None:
        spy.wait(args.seconds * 4)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    replay = "; ".join(re.findall(r"replay: (.*)", out))
    counts = re.findall(r"replay: thread sent (\d+) requests over (\d+) distinct", out)
    wrapped = any(int(sent) > int(distinct) for sent, distinct in counts)
    return Result(
        name,
        float(rps.group(1)) if rps else 0.0,
        int(non_2xx.group(1)) if non_2xx else 0,
        errors.group(0) if errors else "",
        replay,
        wrapped,
    )


# ------------------------------------------------------------------------------ preparation


def callback_body(request_id: str) -> dict[str, Any]:
    """A terminal callback in Pixazo's status shape (what the simulator sends)."""
    return {
        "request_id": request_id,
        "status": "COMPLETED",
        "model_id": MODEL,
        "error": None,
        "output": {
            "media_url": [f"https://cdn.bench.test/{request_id}/output.mp4"],
            "media_type": "video/mp4",
        },
        "created_at": "2026-05-22T13:17:32.110Z",
        "updated_at": "2026-05-22 13:19:23",
        "completed_at": "2026-05-22 13:19:23",
    }


def submitted_job(svc: Services, client_id: str) -> tuple[str, str]:
    """A job moved queued -> submitting -> submitted through the state machine, its request id
    bound, as a submit accepted by Pixazo leaves it. Returns (job id, request id)."""
    job = NewJob(client_id, MODEL, dict(JOB_BODY["input"]), {}, None, 0.3, "terminal")
    job_id = svc.jobs.create(job).job_id
    request_id = f"{MODEL}_{uuid.uuid4()}"
    moves = [
        (JobState.QUEUED, JobState.SUBMITTING, {}),
        (
            JobState.SUBMITTING,
            JobState.SUBMITTED,
            {"request_id": request_id, "upstream_status": "QUEUED"},
        ),
    ]
    for current, target, fields in moves:
        if not svc.states.transition(job_id, expected=[current], to=target, fields=fields).applied:
            raise RuntimeError(f"could not move {job_id} {current} -> {target}")
    svc.jobs.bind_request(request_id, job_id, REQUEST_ID_TTL_SECONDS)
    return job_id, request_id


def callback_line(svc: Services, client_id: str) -> str:
    job_id, request_id = submitted_job(svc, client_id)
    token = callback_token(svc.settings.secret_key, job_id)
    body = json.dumps(callback_body(request_id))
    return f"POST\t/webhooks/pixazo/{job_id}/{token}\t{body}"


# ----------------------------------------------------------------------------------- main


def report(results: list[Result], bare: float) -> None:
    print(f"\nbare Flask: {bare:.0f} requests/s (mean of the first and last run)")
    for result in results:
        ratio = result.rps / bare if bare else float("nan")
        target = TARGETS.get(result.name)
        verdict = "" if target is None else f"   [target >= {target}x: "
        if target is not None:
            verdict += ("ok" if ratio >= target else "MISSED") + "]"
        problems = f", non-2xx {result.non_2xx}" if result.non_2xx else ""
        problems += f", {result.errors}" if result.errors else ""
        print(f"  {result.name:20s} {result.rps:8.0f} req/s  {ratio:5.2f}x{problems}{verdict}")
        if result.replay:
            print(f"  {'':20s} {result.replay}")
        if result.name == "first callback" and result.wrapped:
            print(f"  {'':20s} WARNING: ran out of fresh jobs, some requests were duplicates")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=SECONDS)
    parser.add_argument("--threads", type=int, default=WRK_THREADS)
    parser.add_argument("--connections", type=int, default=WRK_CONNECTIONS)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "")
    parser.add_argument("--profile", type=Path, help="py-spy the product's gunicorn into DIR")
    args = parser.parse_args(argv)
    if not args.wrk:
        raise SystemExit("bench-http needs wrk on PATH (Debian: apt-get install wrk)")
    print(f"load average at start: {os.getloadavg()}; cpus {os.cpu_count()}")
    line = " ".join(gunicorn_argv(0, "APP")[3:])
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s; gunicorn {line}")
    stack = Stack()
    try:
        run(stack, args)
    finally:
        stack.stop_all()
    print(f"load average at end: {os.getloadavg()}")


def run(stack: Stack, args: argparse.Namespace) -> None:
    _, url = stack.start_redis()
    env = base_env(url, **BENCH_ENV, PYTHONPATH=checkout_pythonpath())
    svc = build_services(load_settings(env))
    r = redis.Redis.from_url(url, decode_responses=True)
    client, api_key = ClientStore(r).create("bench-http", "https://consumer.bench.test/hooks")
    bare_url, _ = serve(stack, "bare", "benchmarks.bare_app:app", env)
    web_url, web_pid = serve(stack, "web", "orchestrator.wsgi:app", env)
    workdir, auth = stack.workdir, f"Bearer {api_key}"
    bare_line = [f"POST\t/\t{json.dumps(JOB_BODY)}"]
    results = [wrk("bare flask", bare_url, bare_line, workdir, args, "")]
    intake = [f"POST\t/v1/jobs\t{json.dumps(JOB_BODY)}"]
    results.append(wrk("intake", web_url, intake, workdir, args, auth, web_pid))
    repeated = [callback_line(svc, client.id)]
    duplicate = wrk("duplicate callback", web_url, repeated, workdir, args, "", web_pid)
    results.append(duplicate)
    jobs = min(MAX_FIRST_JOBS, math.ceil(duplicate.rps * args.seconds * FIRST_JOBS_HEADROOM))
    started = time.monotonic()
    lines = [callback_line(svc, client.id) for _ in range(jobs)]
    print(f"prepared {jobs} submitted jobs in {time.monotonic() - started:.1f} s")
    results.append(wrk("first callback", web_url, lines, workdir, args, "", web_pid))
    results.append(wrk("bare flask (again)", bare_url, bare_line, workdir, args, ""))
    bare = (results[0].rps + results[-1].rps) / 2
    report(results, bare)


if __name__ == "__main__":
    main()
