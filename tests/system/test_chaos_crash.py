"""Crashes while jobs flow, against real processes.

- kill -9 of worker processes at random moments while 300 jobs flow, several times (the whole
  worker process group, restarted each time, alternating with a single pool child, which Celery
  replaces): every job terminal and exactly one accepted submit per job at the simulator.
- A Redis restart (appendonly yes, stopped with SIGTERM, started again on the same port and
  directory) in the middle of a run: every job intake answered 202 for is terminal at the end.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from tests.system.resilience_support import (
    accepted_per_job,
    assert_one_accepted_submit_each,
    cli,
    dedicated_system,
    kill_one_child,
    kill_worker_group,
    post_jobs,
    timeline,
    wait_terminal,
)

pytestmark = pytest.mark.chaos
KILLS = 6
SEED = 314159
JOBS = 300
SUBMIT_DELAY_SECONDS = 0.15
WORKER_SLOTS = 8
# After a Redis restart a worker subscribes to its remote-control fanout again within moments;
# a probe retried for this long (as a liveness probe's failure threshold would) must answer.
REMOTE_CONTROL_BACK_SECONDS = 30.0


def _post_in_background(
    system, key, n: int, batches: int, retry_for: float = 0.0
) -> tuple[threading.Thread, list[str]]:
    posted: list[str] = []

    def run() -> None:
        for _ in range(batches):
            posted.extend(post_jobs(system, key, n // batches, threads=6, retry_for=retry_for))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, posted


def _interrupted_submits(entries: list[dict]) -> int:
    claimed = sum(1 for e in entries if e.get("to") == "submitting")
    recorded = sum(1 for e in entries if e.get("type") == "submit_attempt")
    return claimed - recorded


def test_kill_9_workers_while_300_jobs_flow() -> None:
    rng = random.Random(SEED)
    with dedicated_system(worker_concurrency=WORKER_SLOTS) as (stack, system, _):
        _, key = system.new_client("crashy")
        # Slow answers keep submits in flight, so that kills land between send and record.
        system.sim_config(submit_delay_seconds=SUBMIT_DELAY_SECONDS)
        poster, job_ids = _post_in_background(system, key, JOBS, batches=10)
        kills: Counter = Counter()
        for n in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            if n % 2 == 0:
                [worker] = system.orch.workers
                kill_worker_group(stack, worker)
                system.orch.workers.remove(worker)
                kills["worker group"] += 1
                system.orch.start_worker(WORKER_SLOTS, name=f"worker-restart{n}")
            elif kill_one_child(system.orch.workers[0], rng):
                kills["pool child"] += 1
        poster.join(120)
        assert len(job_ids) == JOBS
        counts = wait_terminal(system, job_ids, 150, "all 300 jobs terminal after the kills")
        stats = assert_one_accepted_submit_each(system, job_ids)
        interrupted = sum(1 for j in job_ids if _interrupted_submits(timeline(system, j)))
        through_unknown = sum(
            1 for j in job_ids if any(e.get("to") == "submit_unknown" for e in timeline(system, j))
        )
        resubmitted = sum(1 for n in accepted_per_job(system).values() if n > 1)
    print(
        f"\nkill -9: {JOBS} jobs, kills {dict(kills)} (seed {SEED}); {counts}; accepted "
        f"{stats['submits_accepted']} (one per job, {resubmitted} double charges); submits cut "
        f"by a kill after the claim (no recorded answer) {interrupted}, of which went through "
        f"submit_unknown {through_unknown} (the others were claimed by their callback first)"
    )
    assert counts == {"completed": JOBS}
    assert kills["worker group"] == KILLS // 2 and kills["pool child"] >= 1


def test_redis_restart_mid_run_loses_no_accepted_job() -> None:
    with dedicated_system(appendonly=True, supervise=True) as (stack, system, redis_proc):
        _, key = system.new_client("restart")
        port = int(redis_proc.popen.args[redis_proc.popen.args.index("--port") + 1])
        # Posted as a client should: 503s and lost connections retried with the job's
        # Idempotency-Key, so every job ends accepted once whatever the machine's load.
        poster, job_ids = _post_in_background(system, key, 150, batches=15, retry_for=60.0)
        time.sleep(2.0)
        stack.stop(redis_proc)  # SIGTERM: Redis flushes its append-only file and exits
        down_at = time.monotonic()
        time.sleep(2.0)
        stack.start_redis(port=port, appendonly=True)
        outage = time.monotonic() - down_at
        poster.join(120)
        counts = wait_terminal(system, job_ids, 150, "every 202'd job terminal after restart")
        per_job = accepted_per_job(system)
        doubles = {j: n for j, n in per_job.items() if n > 1}
        processes = (system.orch.beat, system.orch.web, *system.orch.workers)
        survivors = [p.alive for p in processes]
        restarts = {p.name: p.restarts for p in processes if p.restarts}
        # Remote control (a pub/sub subscription on Redis) came back too: the probe answers.
        # Jobs now finish seconds after the restart, so the first probe may come before the
        # worker has subscribed again (seen once in seven runs, answered 0.9 s later).
        probe, probe_after = _probe_until_answered(system, REMOTE_CONTROL_BACK_SECONDS)
        errors = Counter(system.redis.hget(f"job:{j}", "error") for j in job_ids)
    print(
        f"\nredis restart: outage {outage:.1f} s; intake answered 202 for {len(job_ids)} of 150; "
        f"{counts} (errors {dict(errors)}); accepted submits {sum(per_job.values())} for "
        f"{len(per_job)} jobs, charged "
        f"twice: {len(doubles)}; processes the supervisor restarted: {restarts or 'none'}; "
        f"the worker answered its probe {probe_after:.1f} s after the jobs ended"
    )
    assert all(survivors)  # beat, web and worker rode out the outage (restarted if they exited)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert len(set(job_ids)) == 150  # every job accepted once (503s retried with its key)
    assert sum(counts.values()) == len(job_ids)
    assert counts == {"completed": len(job_ids)}


def _probe_until_answered(system, bound: float):
    """``orchestrator worker ping`` for worker1, again until it answers or ``bound`` seconds
    pass; the last answer and how long it took."""
    started = time.monotonic()
    while True:
        probe = cli(system, "worker", "ping", "-d", "worker1@%h", "--json")
        waited = time.monotonic() - started
        if probe.returncode == 0 or waited > bound:
            return probe, waited
