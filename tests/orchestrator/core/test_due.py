"""DueSet: the due-time sets' reads and writes."""

from __future__ import annotations

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
