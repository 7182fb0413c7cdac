"""A finished job's timeline is kept packed in its hash: every entry comes back whole and in
order, nothing of it outlives the job, and nothing appended meanwhile is lost (issue 12)."""

from __future__ import annotations

import json

from orchestrator.core import keys
from orchestrator.core.compact import pack
from orchestrator.jobs import timeline
from orchestrator.jobs.state import JobState

S = JobState


def packed(svc, job_id: str) -> str | None:
    return svc.redis.hget(keys.job(job_id), timeline.FIELD)


def test_a_terminal_move_without_an_event_packs_the_timeline_and_keeps_every_entry(
    svc, job_factory
) -> None:
    job_id = job_factory(S.SUBMITTED)
    svc.jobs.append_timeline(job_id, {"type": "callback", "raw": '{"status":"FAILED"}'})
    before = svc.jobs.timeline(job_id)
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.FAILED)
    assert packed(svc, job_id).startswith(timeline.PACKED_PREFIX)
    assert not svc.redis.exists(keys.timeline(job_id))  # one key fewer for the retention
    after = svc.jobs.timeline(job_id)
    assert after[:-1] == before and after[-1]["to"] == "failed"


def test_entries_appended_after_packing_follow_it_and_are_packed_next_time(
    svc, job_factory
) -> None:
    job_id = job_factory(S.SUBMITTED)
    assert timeline.compact(svc.redis, job_id)
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "repoll"})
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "note"})
    entries = svc.jobs.timeline(job_id)
    assert [e.get("action") for e in entries[-2:]] == ["repoll", "note"]
    assert svc.redis.llen(keys.timeline(job_id)) == 2
    assert timeline.compact(svc.redis, job_id)
    assert not svc.redis.exists(keys.timeline(job_id))
    assert svc.jobs.timeline(job_id) == entries
    assert svc.jobs.timeline(job_id, limit=2) == entries[:2]


def test_an_entry_after_packing_starts_a_list_that_expires_with_the_job(svc, job_factory) -> None:
    """A late callback, an operator's action or a replay's attempt on a finished job: the new
    list gets the job's TTL (nothing of the job outlives it), whichever writer made it."""
    job_id = job_factory(S.SUBMITTED)
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.FAILED)
    assert not svc.redis.exists(keys.timeline(job_id))
    svc.jobs.append_timeline(job_id, {"type": "operator", "action": "note"})
    ttl = svc.redis.ttl(keys.timeline(job_id))
    assert 0 < ttl <= svc.retention_seconds and ttl >= svc.redis.ttl(keys.job(job_id)) - 1
    assert svc.jobs.timeline(job_id)[-1]["action"] == "note"


def test_kept_only_appends_write_nothing_for_a_job_that_is_gone(svc) -> None:
    assert not timeline.append(svc.redis, "job_missing", "{}", kept_only=True)
    assert not svc.redis.exists(keys.timeline("job_missing"))


def test_nothing_is_packed_when_something_changed_or_there_is_nothing_to_pack(
    svc, job_factory
) -> None:
    job_id = job_factory(S.QUEUED)
    assert timeline.compact(svc.redis, job_id)
    assert not timeline.compact(svc.redis, job_id)  # nothing new since
    svc.jobs.append_timeline(job_id, {"type": "x"})
    elements = svc.redis.lrange(keys.timeline(job_id), 0, -1)
    head = packed(svc, job_id)
    script = svc.redis.register_script(timeline.lua.source("timeline_compact"))
    name, job = keys.timeline(job_id), keys.job(job_id)
    for read_head, read_field in (("not the head", head), (elements[0], "not the field")):
        args = [1, read_head, "z:", read_field, timeline.FIELD]
        assert not script(keys=[name, job], args=args)
    assert svc.redis.lrange(name, 0, -1) == elements and packed(svc, job_id) == head
    assert not timeline.compact(svc.redis, "job_missing")
    assert not svc.redis.exists(keys.timeline("job_missing"), keys.job("job_missing"))


def test_a_timeline_packed_by_the_older_code_still_reads_and_repacks_with_the_dictionary(
    svc, job_factory
) -> None:
    """Jobs stored before the preset dictionary keep their "z:" head (plain zlib) for their
    retention, and those packed before the hash field a "z:1:" head in the list: readers
    expand both, and a later packing folds them into the job hash."""
    job_id = job_factory(S.SUBMITTED)
    entries = svc.jobs.timeline(job_id)
    name = keys.timeline(job_id)
    text = json.dumps(entries, separators=(",", ":"))
    for head in (
        timeline.OLD_PACKED_PREFIX + pack(text),
        timeline.PACKED_PREFIX + timeline.pack_timeline(text),
    ):
        svc.redis.hdel(keys.job(job_id), timeline.FIELD)
        svc.redis.delete(name)
        svc.redis.rpush(name, head)
        assert svc.jobs.timeline(job_id) == entries
        svc.jobs.append_timeline(job_id, {"type": "operator", "action": "repoll"})
        assert timeline.compact(svc.redis, job_id)
        assert not svc.redis.exists(name)
        assert packed(svc, job_id).startswith(timeline.PACKED_PREFIX)
        assert [e.get("action") for e in svc.jobs.timeline(job_id)] == [
            *[None] * len(entries),
            "repoll",
        ]


def test_the_packed_head_is_a_third_of_plain_zlib_for_a_usual_timeline(svc, job_factory) -> None:
    job_id = job_factory(S.SUBMITTED)
    request = "pixverse-v6-text-to-video_fa25833e-7a41-4b51-95d5-f30c92ea0d17"
    raw = json.dumps({"request_id": request, "status": "COMPLETED", "error": None})
    svc.jobs.append_timeline(job_id, {"type": "callback", "raw": raw, "request_id": request})
    svc.states.transition(job_id, expected=[S.SUBMITTED], to=S.COMPLETED)
    text = json.dumps(svc.jobs.timeline(job_id), separators=(",", ":"))
    head = packed(svc, job_id)
    assert head.startswith(timeline.PACKED_PREFIX)
    assert len(head) < len(pack(text)) * 0.6
