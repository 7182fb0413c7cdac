"""The upstream leg under faults, with real processes: unknown outcomes, a worker killed between
send and record, 5xx after accept, the 402 pause by hand, the shared limiter across two worker
processes, and two beat processes at once.

Every test runs on a dedicated system (its own redis-server) with a 1 s submit timeout and a 5 s
unknown-outcome grace, so that what takes minutes in production takes seconds here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from tests.conftest import System, fresh, wait_for
from tests.system.resilience_support import (
    accepted_per_job,
    assert_one_accepted_submit_each,
    cli,
    count_states,
    dedicated_system,
    kill_worker_group,
    post_jobs,
    states,
    timeline,
    wait_terminal,
)

pytestmark = pytest.mark.integration
RESUBMIT_REASON = "no callback within the grace period: resubmitting"


@pytest.fixture(scope="module")
def resilient_stack() -> Iterator[tuple]:
    with dedicated_system() as started:
        yield started


@pytest.fixture
def rs(resilient_stack) -> Iterator[System]:
    _, system, _ = resilient_stack
    yield from fresh(system)


def _reasons(system: System, job_id: str) -> list[str]:
    return [e.get("reason", "") for e in timeline(system, job_id)]


def _first_state_seen(system: System, job_id: str, wanted: str) -> bool:
    return any(e.get("to") == wanted for e in timeline(system, job_id))


def test_read_timeout_after_send_waits_and_a_late_callback_binds(rs: System) -> None:
    """Pixazo answers after our 1 s read timeout: the job goes to submit_unknown, the callback
    to its own URL binds the request_id, and nothing is resubmitted."""
    _, key = rs.new_client("late")
    rs.sim_config(submit_delay_seconds=2.0, queued_seconds=1.5, processing_seconds=1.0)
    [job_id] = post_jobs(rs, key, 1)
    wait_for(lambda: _first_state_seen(rs, job_id, "submit_unknown"), 15, what="unknown")
    assert rs.job(key, job_id)["status"] == "queued"  # a sub-state: clients still see queued
    wait_terminal(rs, [job_id], 30, "completion via the late callback")
    time.sleep(10)  # past the 9 s grace: a wrongly armed resubmit would have fired by now
    job = rs.job(key, job_id)
    assert job["status"] == "completed" and job["attempts"] == 1
    [request] = requests.get(f"{rs.sim}/_sim/requests", timeout=5).json()
    assert job["request_id"] == request["request_id"]
    assert accepted_per_job(rs) == {job_id: 1}
    assert RESUBMIT_REASON not in _reasons(rs, job_id)


def test_unknown_without_any_callback_is_resubmitted_after_the_grace(rs: System) -> None:
    """No evidence ever comes (the callback is lost): only then is it resubmitted, and the
    timeline says why. (This is the one case where a double charge can happen: documented.)"""
    _, key = rs.new_client("lost")
    rs.sim_config(submit_delay_seconds=2.0, drop_rate=1.0)
    [job_id] = post_jobs(rs, key, 1)
    wait_for(lambda: _first_state_seen(rs, job_id, "submit_unknown"), 15, what="unknown")
    rs.sim_config(submit_delay_seconds=0.0)
    wait_for(lambda: RESUBMIT_REASON in _reasons(rs, job_id), 20, what="resubmit")
    wait_terminal(rs, [job_id], 30, "completion via polling")
    job = rs.job(key, job_id)
    assert job["status"] == "completed" and job["attempts"] == 2
    assert accepted_per_job(rs) == {job_id: 2}


def test_500_after_accept_is_not_resent(rs: System) -> None:
    """Pixazo queued and charged the generation but answered 500: the callback claims the job."""
    _, key = rs.new_client("five")
    rs.sim_config(rate_500_after_accept=1.0)
    job_ids = post_jobs(rs, key, 20)
    assert len(job_ids) == 20
    counts = wait_terminal(rs, job_ids, 45, "jobs answered 500 after accept")
    time.sleep(10)  # past the 9 s grace
    stats = assert_one_accepted_submit_each(rs, job_ids)
    assert counts == {"completed": 20}
    assert stats["accepted_then_500"] == 20
    assert all(_first_state_seen(rs, j, "submit_unknown") for j in job_ids)
    print(
        f"\n500-after-accept: 20 jobs, accepted {stats['submits_accepted']}, "
        f"answered 500 {stats['accepted_then_500']}, resubmits 0"
    )


def test_worker_killed_between_send_and_record(resilient_stack, rs: System) -> None:
    """kill -9 while the submit waits for Pixazo's answer: the job sits in submitting until beat
    calls it unknown (submit timeout + margin); the callback then claims it. One charge."""
    stack, _, _ = resilient_stack
    _, key = rs.new_client("killed")
    rs.sim_config(submit_delay_seconds=0.8, queued_seconds=14.0, processing_seconds=1.0)
    [job_id] = post_jobs(rs, key, 1)
    wait_for(lambda: rs.sim_stats()["submits_accepted"] == 1, 15, every=0.02, what="send")
    [worker] = rs.orch.workers
    kill_worker_group(stack, worker)
    rs.orch.workers.remove(worker)
    assert states(rs, [job_id])[job_id] == "submitting"
    rs.orch.start_worker(name=f"worker-after-kill-{job_id[-6:]}")
    wait_for(lambda: _first_state_seen(rs, job_id, "submit_unknown"), 30, what="beat: unknown")
    assert any("worker lost" in r for r in _reasons(rs, job_id))
    wait_terminal(rs, [job_id], 30, "completion via the callback")
    assert accepted_per_job(rs) == {job_id: 1}
    assert RESUBMIT_REASON not in _reasons(rs, job_id)


def test_pause_and_resume_by_hand_with_readyz(rs: System) -> None:
    _, key = rs.new_client("paused")
    paused = cli(rs, "submissions", "pause", "--reason", "maintenance")
    assert paused.returncode == 0, paused.stderr
    ready = requests.get(f"{rs.web}/readyz", timeout=5).json()
    assert ready["details"]["submissions_paused"] is True
    assert ready["details"]["pause"]["reason"] == "maintenance"
    job_ids = post_jobs(rs, key, 5)
    time.sleep(3)
    assert count_states(rs, job_ids) == {"queued": 5}
    assert rs.sim_stats()["submits_received"] == 0  # an operator's pause sends no probe
    resumed = cli(rs, "submissions", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        requests.get(f"{rs.web}/readyz", timeout=5).json()["details"]["submissions_paused"] is False
    )
    assert wait_terminal(rs, job_ids, 90, "jobs after resume") == {"completed": 5}
    assert_one_accepted_submit_each(rs, job_ids)


def _max_overlap(starts: list[float], length: float) -> int:
    edges = sorted(
        [(s, 1) for s in starts] + [(s + length, -1) for s in starts], key=lambda e: (e[0], e[1])
    )
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def _accepted_times(system: System) -> list[float]:
    records = requests.get(f"{system.sim}/_sim/requests", timeout=5).json()
    return sorted(
        datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).timestamp() for r in records
    )


CAP, RATE = 3, 8
# Tokens are taken in the worker, times are read at the simulator: requests in transit can
# bunch up by a fraction of a second between the two.
TRANSIT_SLACK_SECONDS = 0.5


def test_limiter_caps_concurrency_and_rate_across_two_workers_and_two_beats() -> None:
    """Two worker processes (4 slots each) and two beat processes share one Redis limiter.

    The simulator has no in-flight counter, so concurrency is measured from its records: every
    accepted submit is in flight from its creation for ``submit_delay_seconds``.
    """
    env = {
        "ORCHESTRATOR_SUBMIT_CONCURRENCY": str(CAP),
        "ORCHESTRATOR_SUBMIT_RATE_PER_SECOND": str(RATE),
        "ORCHESTRATOR_SUBMIT_TIMEOUT_SECONDS": "5",
        "ORCHESTRATOR_UNKNOWN_GRACE_SECONDS": "13",  # start-up: > 5 + 5 connect + 2
    }
    with dedicated_system(env) as (_, system, _):
        system.orch.start_worker()
        first_beat = system.orch.beat
        second_beat = system.orch.start_beat("beat2")
        _, key = system.new_client("limited")
        # Phase 1: slow answers, so the concurrency cap binds (3 in flight = 5/s < 8/s).
        delay = 0.6
        system.sim_config(submit_delay_seconds=delay)
        slow = post_jobs(system, key, 24)
        wait_for(lambda: system.sim_stats()["submits_accepted"] == 24, 60, what="phase 1")
        peak = _max_overlap(_accepted_times(system), delay - 0.02)
        # Phase 2: instant answers, so the rate binds.
        system.reset()
        _, key = system.new_client("limited")
        system.sim_config(submit_delay_seconds=0.0)
        fast = post_jobs(system, key, 40)
        wait_for(lambda: system.sim_stats()["submits_accepted"] == 40, 60, what="phase 2")
        times = _accepted_times(system)
        busiest = max(sum(1 for t in times if s <= t < s + 2.0) for s in times)
        wait_terminal(system, fast, 60, "phase 2 jobs")
        sends = [p.log().count("Sending due task reconcile") for p in (first_beat, second_beat)]
    print(
        f"\nlimiter: 2 workers x 4 slots, cap {CAP}: peak in flight at the sim {peak}; "
        f"rate {RATE}/s: busiest 2 s window {busiest} accepted (2 s of tokens + a full bucket = "
        f"{RATE * 2 + RATE}); "
        f"beat sends by beat 1/2: {sends}"
    )
    assert len(slow) == 24 and len(fast) == 40
    assert peak == CAP  # the cap was reached and never exceeded
    assert busiest <= RATE * (2 + TRANSIT_SLACK_SECONDS) + RATE  # 2 s of tokens + a bucket
    assert min(sends) == 0 and max(sends) > 0  # only the beat holding RedBeat's lock fires
