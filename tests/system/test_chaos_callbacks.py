"""Callbacks lost, duplicated and shuffled, and sync-mode progress, against real processes.

- 200 jobs with 30% of callbacks dropped: every job terminal, the dropped ones through polling.
- Every callback delivered 3 times, all shuffled: one terminal transition, one event per job.
- Sync mode: PROCESSING callbacks move jobs to processing; opted-in clients get one
  ``job.processing`` event per job, the others none.
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devtools.devstack import SIM_API_KEY
from orchestrator.core.clients import DEFAULT_EVENT_TYPES
from tests.conftest import System, fresh, wait_for
from tests.helpers import job_event_ids
from tests.system.resilience_support import (
    assert_one_accepted_submit_each,
    dedicated_system,
    events_by_job,
    job_of_hook,
    post_jobs,
    terminal_transitions,
    timeline,
    wait_terminal,
)

WITH_PROGRESS = (*DEFAULT_EVENT_TYPES, "job.processing")
COPIES = 3
SEED = 20261121


@pytest.fixture(scope="module")
def terminal_system() -> Iterator[System]:
    with dedicated_system() as (_, system, _):
        yield system


@pytest.fixture(scope="module")
def sync_system() -> Iterator[System]:
    # Stuck-after is long here: the callbacks, not polls, should drive these jobs.
    env = {"PIXAZO_WEBHOOK_MODE": "sync", "ORCHESTRATOR_STUCK_AFTER_SECONDS": "20"}
    with dedicated_system(env) as (_, system, _):
        yield system


@pytest.fixture
def ts(terminal_system: System) -> Iterator[System]:
    yield from fresh(terminal_system)


@pytest.fixture
def ss(sync_system: System) -> Iterator[System]:
    yield from fresh(sync_system)


def _sources(system: System, job_ids: list[str]) -> Counter:
    """Where each job's terminal transition came from (callback or poll)."""
    found: Counter = Counter()
    for job_id in job_ids:
        [terminal] = terminal_transitions(timeline(system, job_id))
        found[terminal.get("source", "?")] += 1
    return found


def _wait_events(system: System, name: str, job_ids: list[str], types: set[str]) -> None:
    def arrived() -> bool:
        got = events_by_job(system, name)
        return all(types <= set(got.get(j, {})) for j in job_ids)

    wait_for(arrived, timeout=60, every=0.5, what=f"{types} events for {name}")
    time.sleep(2)  # any stray extra event would show up now


@pytest.mark.chaos
def test_200_jobs_with_30_percent_of_callbacks_dropped(ts: System) -> None:
    _, key = ts.new_client("dropped")
    ts.sim_config(drop_rate=0.3)
    job_ids = post_jobs(ts, key, 200)
    assert len(job_ids) == 200
    counts = wait_terminal(ts, job_ids, 120, "all 200 jobs terminal")
    stats = assert_one_accepted_submit_each(ts, job_ids)
    requests_by_job = {
        job_of_hook(r["webhook_url"]): r
        for r in requests.get(f"{ts.sim}/_sim/requests", timeout=10).json()
    }
    dropped = {
        j for j, r in requests_by_job.items() if any(c.get("dropped") for c in r["callbacks"])
    }
    sources = _sources(ts, job_ids)
    calls = stats["status_calls_by_request"]
    per_job = [calls.get(requests_by_job[j]["request_id"], 0) for j in job_ids]
    per_dropped = [calls.get(requests_by_job[j]["request_id"], 0) for j in dropped]
    print(
        f"\ndropped callbacks: 200 jobs, {counts}; callbacks dropped by the sim "
        f"{stats['callbacks_dropped']}; terminal via {dict(sources)}; status calls "
        f"{stats['status_calls']} in all = {stats['status_calls'] / 200:.2f} per job "
        f"(jobs whose callback was dropped: mean {statistics.mean(per_dropped):.2f}, "
        f"max {max(per_dropped)}; others: {sum(per_job) - sum(per_dropped)} calls)"
    )
    assert counts == {"completed": 200}
    assert len(dropped) == stats["callbacks_dropped"] > 0  # terminal mode: one callback each
    assert sources["poll"] >= len(dropped)  # each dropped one was finished by a poll
    assert sources["callback"] + sources["poll"] == 200
    assert all(calls.get(requests_by_job[j]["request_id"], 0) >= 1 for j in dropped)
    _wait_events(ts, "dropped", job_ids, {"job.completed"})
    events = events_by_job(ts, "dropped")
    assert all(len(events[j]["job.completed"]) == 1 for j in job_ids)


def _status_body(system: System, request_id: str) -> dict[str, Any]:
    answer = requests.get(
        f"{system.sim}/v2/requests/status/{request_id}",
        headers={"Ocp-Apim-Subscription-Key": SIM_API_KEY},
        timeout=5,
    )
    answer.raise_for_status()
    return answer.json()


def _progress_of(terminal: dict[str, Any]) -> dict[str, Any]:
    return {**terminal, "status": "PROCESSING", "output": None, "error": None, "completed_at": None}


@pytest.mark.chaos
def test_every_callback_three_times_shuffled(ss: System) -> None:
    """The simulator's own callbacks are switched off; the test plays Pixazo's network and
    delivers each job's PROCESSING and terminal callbacks 3 times each, all jobs shuffled."""
    _, plain_key = ss.new_client("triple")
    _, progress_key = ss.new_client("triple_progress", event_types=WITH_PROGRESS)
    ss.sim_config(drop_rate=1.0, queued_seconds=0.1, processing_seconds=0.3, failure_rate=0.2)
    plain = post_jobs(ss, plain_key, 50)
    progress = post_jobs(ss, progress_key, 50)
    job_ids = plain + progress
    assert len(job_ids) == 100
    wait_for(lambda: ss.sim_stats()["submits_accepted"] == 100, 60, what="100 accepted")
    wait_for(
        lambda: all(
            r["status"] in ("COMPLETED", "FAILED")
            for r in requests.get(f"{ss.sim}/_sim/requests", timeout=10).json()
        ),
        30,
        what="the simulator's requests terminal",
    )
    deliveries = []
    for record in requests.get(f"{ss.sim}/_sim/requests", timeout=10).json():
        terminal = _status_body(ss, record["request_id"])
        for body in (_progress_of(terminal), terminal):
            deliveries += [(record["webhook_url"], body)] * COPIES
    random.Random(SEED).shuffle(deliveries)

    def deliver(item: tuple[str, dict[str, Any]]) -> int:
        return requests.post(item[0], json=item[1], timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = Counter(pool.map(deliver, deliveries))
    assert answers == {200: len(deliveries)}
    counts = wait_terminal(ss, job_ids, 60, "all 100 jobs terminal")
    wanted = {j: ss.redis.hget(f"job:{j}", "status") for j in job_ids}
    terminal_type = {j: f"job.{s}" for j, s in wanted.items()}
    wait_for(
        lambda: all(terminal_type[j] in events_by_job(ss, "triple").get(j, {}) for j in plain),
        60,
        every=0.5,
        what="plain events",
    )
    wait_for(
        lambda: all(
            terminal_type[j] in events_by_job(ss, "triple_progress").get(j, {}) for j in progress
        ),
        60,
        every=0.5,
        what="progress events",
    )
    time.sleep(2)
    plain_events = events_by_job(ss, "triple")
    progress_events = events_by_job(ss, "triple_progress")
    processing_transitions = 0
    for job_id in job_ids:
        entries = timeline(ss, job_id)
        assert len(terminal_transitions(entries)) == 1, job_id
        received = [e for e in entries if e.get("type") == "callback"]
        assert len(received) == 2 * COPIES  # every copy reached the receiver and was recorded
        assert sum(1 for e in received if not e["duplicate"]) == 2
        moved_to_processing = any(e.get("to") == "processing" for e in entries)
        processing_transitions += moved_to_processing
        got = (plain_events if job_id in plain else progress_events).get(job_id, {})
        assert {t: len(ids) for t, ids in got.items() if t != "job.processing"} == {
            terminal_type[job_id]: 1
        }
        expected_progress = int(moved_to_processing and job_id in progress)
        assert len(got.get("job.processing", ())) == expected_progress
    sent_progress = sum(1 for j in progress if "job.processing" in progress_events.get(j, {}))
    print(
        f"\ntriple shuffled: {len(deliveries)} callbacks posted for 100 jobs, {counts}; "
        f"terminal transitions 100 (one per job), via {dict(_sources(ss, job_ids))}; "
        f"jobs that passed through processing {processing_transitions} (the others got their "
        f"terminal first: PROCESSING then recorded and ignored); job.processing events "
        f"{sent_progress} (opted-in client only); terminal events 1 per job"
    )
    assert sum(counts.values()) == 100 and set(counts) <= {"completed", "failed"}


@pytest.mark.integration
def test_sync_mode_progress_events_for_opted_in_clients(ss: System) -> None:
    _, plain_key = ss.new_client("sync_plain")
    _, progress_key = ss.new_client("sync_progress", event_types=WITH_PROGRESS)
    ss.sim_config(queued_seconds=0.5, processing_seconds=2.0, sync_interval_seconds=0.5)
    plain = post_jobs(ss, plain_key, 10)
    progress = post_jobs(ss, progress_key, 10)
    job_ids = plain + progress
    assert wait_terminal(ss, job_ids, 60, "sync jobs") == {"completed": 20}
    _wait_events(ss, "sync_progress", progress, {"job.processing", "job.completed"})
    _wait_events(ss, "sync_plain", plain, {"job.completed"})
    progress_events = events_by_job(ss, "sync_progress")
    plain_events = events_by_job(ss, "sync_plain")
    for job_id in job_ids:
        entries = timeline(ss, job_id)
        assert [e["to"] for e in entries if e.get("type") == "transition"][-2:] == [
            "processing",
            "completed",
        ]
        progress_callbacks = [
            e
            for e in entries
            if e.get("type") == "callback" and e["upstream_status"] == "PROCESSING"
        ]
        assert len(progress_callbacks) >= 2  # several sync polls, one transition
    assert all(
        {t: len(i) for t, i in progress_events[j].items()}
        == {"job.processing": 1, "job.completed": 1}
        for j in progress
    )
    assert all(
        {t: len(i) for t, i in plain_events[j].items()} == {"job.completed": 1} for j in plain
    )
    for job_id in progress:  # the processing event was created before the terminal one
        seqs = {
            ss.redis.hget(f"evt:{e}", "type"): int(ss.redis.hget(f"evt:{e}", "seq"))
            for e in job_event_ids(ss.redis, job_id).values()
        }
        assert seqs["job.processing"] < seqs["job.completed"]
    assert_one_accepted_submit_each(ss, job_ids)
