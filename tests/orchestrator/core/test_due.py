"""DueSet: the due-time sets' reads and writes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from orchestrator.core import keys
from orchestrator.core.due import DueSet


def test_due_reads_what_is_due_earliest_first_in_bounded_batches(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_POLL)
    for i, at in enumerate([30.0, 10.0, 20.0, 50.0]):
        s.schedule(f"job_{i}", at)
    assert s.due(30.0, 10) == ["job_1", "job_2", "job_0"]
    assert s.due(30.0, 2) == ["job_1", "job_2"]
    assert s.due(5.0, 10) == []


def test_schedule_adds_or_moves(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_SUBMIT)
    s.schedule("job_a", 10.0)
    s.schedule("job_a", 40.0)
    assert s.at("job_a") == 40.0 and fake_redis.zcard(keys.DUE_SUBMIT) == 1


def test_push_back_moves_only_members_still_there(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_DELIVERY)
    s.schedule("evt_a", 1.0)
    s.push_back(["evt_a", "evt_gone"], 100.0)
    assert s.at("evt_a") == 100.0 and s.at("evt_gone") is None
    s.push_back([], 5.0)  # nothing to do, no error


def test_remove(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_CALLBACK)
    s.schedule("inb_a", 1.0)
    s.remove("inb_a")
    s.remove("inb_a")
    assert s.at("inb_a") is None and s.due(10.0, 10) == []


def test_the_seven_sets() -> None:
    assert len(set(keys.DUE_SETS)) == 7 and set(keys.JOB_DUE_SETS) <= set(keys.DUE_SETS)


def test_claim_takes_what_is_due_earliest_first_and_leases_it(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_POLL)
    for i, at in enumerate([30.0, 10.0, 20.0, 50.0]):
        s.schedule(f"job_{i}", at)
    assert s.count_due(30.0) == 3
    assert s.claim(30.0, 2, lease_until=90.0) == ["job_1", "job_2"]
    assert s.at("job_1") == 90.0 and s.at("job_2") == 90.0
    assert s.count_due(30.0) == 1
    # what was claimed is not due again before the lease lapses; the rest is
    assert s.claim(30.0, 10, lease_until=90.0) == ["job_0"]
    assert s.claim(50.0, 10, lease_until=150.0) == ["job_3"]
    assert s.claim(89.0, 10, lease_until=150.0) == []
    assert s.claim(90.0, 10, lease_until=150.0) == ["job_0", "job_1", "job_2"]  # equal: by name


def test_a_crashed_batchs_members_come_due_again_after_the_lease(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_DEADLINE)
    s.schedule("job_a", 1.0)
    assert s.claim(10.0, 5, lease_until=70.0) == ["job_a"]  # ... and the batch dies here
    assert s.claim(69.9, 5, lease_until=130.0) == []
    assert s.claim(70.0, 5, lease_until=130.0) == ["job_a"]


def test_claim_of_an_empty_or_missing_set_is_empty(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_CALLBACK)
    assert s.claim(10.0, 5, lease_until=70.0) == []
    assert s.count_due(10.0) == 0
    assert not fake_redis.exists(keys.DUE_CALLBACK)  # the claim created nothing


def test_concurrent_claimers_never_share_a_member(fake_redis) -> None:
    s = DueSet(fake_redis, keys.DUE_POLL)
    fake_redis.zadd(keys.DUE_POLL, {f"job_{i:04d}": float(i % 97) for i in range(2_000)})
    start = threading.Barrier(4)

    def claimer() -> list[str]:
        start.wait()
        taken: list[str] = []
        while claimed := DueSet(fake_redis, keys.DUE_POLL).claim(100.0, 37, 1_000.0):
            taken.extend(claimed)
        return taken

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: claimer(), range(4)))
    everything = [m for taken in results for m in taken]
    assert len(everything) == len(set(everything)) == 2_000
    assert s.count_due(999.0) == 0
