"""A finished job's timeline is kept packed: every entry comes back whole and in order, the TTL
stays, and nothing appended meanwhile is lost (issue 12)."""

from __future__ import annotations

from orchestrator.core import keys
from orchestrator.jobs import timeline
from orchestrator.jobs.state import JobState

S = JobState


def test_a_terminal_move_without_an_event_packs_the_timeline_and_keeps_every_entry(
    svc, job_factory
) -> None:
    job_id = job_factory(S.SUBMITTED)
    svc.jobs.append_timeline(job_id, {"type": "callback", "raw": '{"status":"FAILED"}'})
    before = svc.jobs.timeline(job_id)
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.FAILED)
    stored = svc.redis.lrange(keys.timeline(job_id), 0, -1)
    assert len(stored) == 1 and stored[0].startswith(timeline.PACKED_PREFIX)
    after = svc.jobs.timeline(job_id)
    assert after[:-1] == before and after[-1]["to"] == "failed"
    assert 0 < svc.redis.ttl(keys.timeline(job_id)) <= svc.retention_seconds


def test_entries_appended_after_packing_follow_it_and_are_packed_next_time(
    svc, job_factory
) -> None:
    job_id = job_factory(S.SUBMITTED)
    assert timeline.compact(svc.redis, job_id)
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "repoll"})
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "note"})
    entries = svc.jobs.timeline(job_id)
    assert [e.get("action") for e in entries[-2:]] == ["repoll", "note"]
    assert timeline.compact(svc.redis, job_id)
    assert svc.redis.llen(keys.timeline(job_id)) == 1
    assert svc.jobs.timeline(job_id) == entries
    assert svc.jobs.timeline(job_id, limit=2) == entries[:2]


def test_nothing_is_packed_when_the_head_changed_or_there_is_nothing_to_gain(
    svc, job_factory
) -> None:
    job_id = job_factory(S.QUEUED)
    assert not timeline.compact(svc.redis, job_id)  # one entry: intake
    svc.jobs.append_timeline(job_id, {"type": "x"})
    elements = svc.redis.lrange(keys.timeline(job_id), 0, -1)
    script = svc.redis.register_script(timeline.lua.source("timeline_compact"))
    assert not script(keys=[keys.timeline(job_id)], args=[2, "not the head", "z:"])
    assert svc.redis.lrange(keys.timeline(job_id), 0, -1) == elements
    assert not svc.redis.exists(keys.timeline("job_missing"))
    assert not timeline.compact(svc.redis, "job_missing")
    assert not svc.redis.exists(keys.timeline("job_missing"))
