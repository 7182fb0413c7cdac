"""A finished job's timeline is kept packed: every entry comes back whole and in order, the TTL
stays, and nothing appended meanwhile is lost (issue 12)."""

from __future__ import annotations

import json

from orchestrator.core import keys
from orchestrator.core.compact import pack
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


def test_a_timeline_packed_by_the_older_code_still_reads_and_repacks_with_the_dictionary(
    svc, job_factory
) -> None:
    """Jobs stored before the preset dictionary keep their "z:" head (plain zlib) for their
    retention: readers expand it, and a later packing folds it into a "z:1:" head."""
    job_id = job_factory(S.SUBMITTED)
    entries = svc.jobs.timeline(job_id)
    name = keys.timeline(job_id)
    old_head = timeline.OLD_PACKED_PREFIX + pack(json.dumps(entries, separators=(",", ":")))
    svc.redis.delete(name)
    svc.redis.rpush(name, old_head)
    assert svc.jobs.timeline(job_id) == entries
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "repoll"})
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "note"})
    assert timeline.compact(svc.redis, job_id)
    stored = svc.redis.lrange(name, 0, -1)
    assert len(stored) == 1 and stored[0].startswith(timeline.PACKED_PREFIX)
    assert [e.get("action") for e in svc.jobs.timeline(job_id)] == [
        *[None] * len(entries),
        "repoll",
        "note",
    ]


def test_the_packed_head_is_a_third_of_plain_zlib_for_a_usual_timeline(svc, job_factory) -> None:
    job_id = job_factory(S.SUBMITTED)
    request = "pixverse-v6-text-to-video_fa25833e-7a41-4b51-95d5-f30c92ea0d17"
    raw = json.dumps({"request_id": request, "status": "COMPLETED", "error": None})
    svc.jobs.append_timeline(job_id, {"type": "callback", "raw": raw, "request_id": request})
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.COMPLETED)
    text = json.dumps(svc.jobs.timeline(job_id), separators=(",", ":"))
    (head,) = svc.redis.lrange(keys.timeline(job_id), 0, -1)
    assert head.startswith(timeline.PACKED_PREFIX)
    assert len(head) < len(pack(text)) * 0.6
