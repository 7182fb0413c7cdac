"""Pixazo misbehaving under load, against real processes.

- Half the submits answered 429 (some with Retry-After, some without) while bursts of 500 come
  and go, both before accepting and after accepting (charged): every job is submitted and the
  simulator counts exactly one accepted submit per job.
- 402 in the middle of a run: submissions pause for everyone, jobs wait (none fails), and they
  resume by themselves once the simulator's balance is restored.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import System, fresh, wait_for
from tests.system.resilience_support import (
    assert_one_accepted_submit_each,
    count_states,
    dedicated_system,
    post_jobs,
    timeline,
    wait_terminal,
)

pytestmark = pytest.mark.chaos
BURST_SECONDS = 1.0
CALM_SECONDS = 1.5


@pytest.fixture(scope="module")
def upstream_stack() -> Iterator[tuple]:
    with dedicated_system() as started:
        yield started


@pytest.fixture
def us(upstream_stack) -> Iterator[System]:
    _, system, _ = upstream_stack
    yield from fresh(system)


def _bursts(system: System, stop: threading.Event) -> Counter:
    """Alternate bursts of plain 500s and of 500s after accept until ``stop``."""
    kinds = ("rate_500", "rate_500_after_accept")
    done: Counter = Counter()
    n = 0
    while not stop.wait(CALM_SECONDS):
        kind = kinds[n % 2]
        system.sim_config(**{kind: 1.0})
        stop.wait(BURST_SECONDS)
        system.sim_config(**{kind: 0.0})
        done[kind] += 1
        n += 1
    return done


def test_429s_and_500_bursts_one_accepted_submit_per_job(us: System) -> None:
    _, key = us.new_client("bursty")
    us.sim_config(rate_429=0.5, retry_after=1.0, retry_after_missing_rate=0.5)
    stop = threading.Event()
    bursts: Counter = Counter()
    burster = threading.Thread(target=lambda: bursts.update(_bursts(us, stop)))
    burster.start()
    try:
        job_ids = post_jobs(us, key, 80)
        job_ids += post_jobs(us, key, 70)
        wait_for(
            lambda: us.sim_stats()["submits_accepted"] >= 150, 120, every=0.5, what="150 accepted"
        )
    finally:
        stop.set()
        burster.join(10)
    counts = wait_terminal(us, job_ids, 90, "all 150 jobs terminal")
    stats = assert_one_accepted_submit_each(us, job_ids)
    attempts = Counter(int(us.redis.hget(f"job:{j}", "attempts")) for j in job_ids)
    unknown = sum(
        1 for j in job_ids if any(e.get("to") == "submit_unknown" for e in timeline(us, j))
    )
    print(
        f"\n429 + 500 bursts: 150 jobs, {counts}; submits received {stats['submits_received']}, "
        f"accepted {stats['submits_accepted']} (one per job), rejected by code "
        f"{stats['rejected_by_code']}, accepted-then-500 {stats['accepted_then_500']}; "
        f"bursts {dict(bursts)}; jobs through submit_unknown {unknown}; "
        f"attempts per job {dict(sorted(attempts.items()))}"
    )
    assert len(job_ids) == 150
    assert counts == {"completed": 150}
    assert stats["rejected_by_code"].get("429", 0) > 0
    assert sum(bursts.values()) >= 2


def _readyz(system: System) -> dict:
    return requests.get(f"{system.web}/readyz", timeout=5).json()["details"]


def test_402_mid_run_pauses_then_resumes_when_balance_is_back(upstream_stack, us: System):
    _, key = us.new_client("broke")
    us.sim_config(balance=40)
    job_ids = post_jobs(us, key, 100)
    assert len(job_ids) == 100
    wait_for(lambda: _readyz(us)["submissions_paused"], 30, what="the pause")
    pause = _readyz(us)["pause"]
    time.sleep(4)  # paused: probes go out once a second, and get 402
    during = us.sim_stats()
    waiting = count_states(us, job_ids)
    assert during["submits_accepted"] == 40
    assert waiting["failed"] == 0 and waiting["queued"] + waiting["submitting"] >= 55
    worker_log = us.orch.workers[0].log()
    us.sim_config(balance=None)
    counts = wait_terminal(us, job_ids, 90, "jobs after the balance is back")
    stats = assert_one_accepted_submit_each(us, job_ids)
    print(
        f"\n402 mid-run: 100 jobs, balance 40; pause {pause}; while paused (4 s): accepted "
        f"{during['submits_accepted']}, 402s {during['rejected_by_code'].get('402')}, states "
        f"{dict(waiting)}; after the balance is back: {counts}, accepted "
        f"{stats['submits_accepted']} (one per job)"
    )
    assert counts == {"completed": 100}
    assert _readyz(us)["submissions_paused"] is False
    assert pause["reason"] == "insufficient_balance"
    assert "submissions paused: insufficient_balance" in worker_log  # the error Sentry gets
    # 402 answers while paused are the probes (one per second), not 60 waiting jobs retrying
    assert during["rejected_by_code"]["402"] < 30
