"""The callback inbox: one round trip records a callback and recognises duplicates."""

from __future__ import annotations

import pytest

from orchestrator.core import keys
from orchestrator.core.compact import RAW_BODY_CAP
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import NewJob
from orchestrator.upstream.statuses import DECISION_FIELDS
from tests.helpers import count_commands
from webhooks.inbound.inbox import MAX_DUPLICATES_ON_TIMELINE, CallbackInbox, seen_field

STATUS = {"request_id": "pixverse_r1", "status": "COMPLETED", "output": None, "error": None}


@pytest.fixture
def job_id(svc) -> str:
    return svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id


def test_first_callback_is_recorded_for_a_task(svc, job_id):
    inbox = CallbackInbox(svc.redis)
    rec = inbox.record(job_id, STATUS, '{"raw": 1}')
    assert rec.known_job and not rec.duplicate and rec.inbox_id
    assert inbox.load(rec.inbox_id) == {"job_id": job_id, "status": STATUS}
    assert svc.redis.zscore(keys.DUE_CALLBACK, rec.inbox_id) is not None
    entry = svc.jobs.timeline(job_id)[-1]
    assert entry["type"] == "callback" and entry["duplicate"] is False
    assert entry["raw"] == '{"raw": 1}'


def test_a_new_callback_reads_back_the_fields_asked_for(svc, job_id):
    rec = CallbackInbox(svc.redis).record(job_id, STATUS, "{}", DECISION_FIELDS)
    raw = svc.jobs.get_raw(job_id)
    assert rec.job == {f: raw[f] for f in DECISION_FIELDS if f in raw}
    assert rec.job["request_id"] == "pixverse_r1"  # as recorded: the record claimed the job
    assert CallbackInbox(svc.redis).record(job_id, STATUS, "{}", DECISION_FIELDS).job is None


def test_the_seen_counter_is_a_field_of_the_job_and_expires_with_it(svc, job_id):
    """Issue 12: no key per callback; the dedupe lasts as long as the job does."""
    before = set(svc.redis.keys("*"))
    inbox = CallbackInbox(svc.redis)
    rec = inbox.record(job_id, STATUS, "{}")
    inbox.record(job_id, STATUS, "{}")
    assert set(svc.redis.keys("*")) - before == {keys.inbox(rec.inbox_id), keys.DUE_CALLBACK}
    assert svc.redis.hget(keys.job(job_id), seen_field("pixverse_r1", "COMPLETED")) == "2"
    svc.redis.expire(keys.job(job_id), 100)  # a finished job's retention
    inbox.record(job_id, STATUS, "{}")
    assert 99 <= svc.redis.ttl(keys.job(job_id)) <= 100


def test_a_long_callback_body_is_kept_up_to_the_cap_and_says_it_was_cut(svc, job_id):
    """Issue 12: raw bodies live on the timeline for the whole retention."""
    body = '{"output": "' + "u" * 2000 + '"}'
    CallbackInbox(svc.redis).record(job_id, STATUS, body)
    raw = svc.jobs.timeline(job_id)[-1]["raw"]
    assert raw.startswith(body[:RAW_BODY_CAP]) and len(raw) < len(body)
    assert f"truncated: {len(body)} characters in all" in raw


def test_duplicate_is_recognised_in_one_round_trip(svc, job_id, monkeypatch):
    inbox = CallbackInbox(svc.redis)
    inbox.record(job_id, STATUS, "{}")
    calls = count_commands(monkeypatch, svc.redis)
    again = inbox.record(job_id, STATUS, "{}")
    assert len(calls) == 1, calls
    assert again.known_job and again.duplicate and again.inbox_id is None
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 1
    assert svc.jobs.timeline(job_id)[-1]["duplicate"] is True


def test_a_different_status_is_new(svc, job_id):
    inbox = CallbackInbox(svc.redis)
    first = inbox.record(job_id, {**STATUS, "status": "PROCESSING"}, "{}")
    second = inbox.record(job_id, STATUS, "{}")
    other_request = inbox.record(job_id, {**STATUS, "request_id": "pixverse_r2"}, "{}")
    assert not second.duplicate and second.inbox_id and second.inbox_id != first.inbox_id
    assert not other_request.duplicate and other_request.inbox_id
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 3


def test_unknown_job_records_nothing(svc):
    rec = CallbackInbox(svc.redis).record("job_missing", STATUS, "{}")
    assert not rec.known_job and rec.inbox_id is None
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0
    assert not svc.redis.exists(keys.timeline("job_missing"))


def test_duplicates_on_the_timeline_are_bounded(svc, job_id):
    inbox = CallbackInbox(svc.redis)
    for _ in range(MAX_DUPLICATES_ON_TIMELINE + 10):
        inbox.record(job_id, STATUS, "{}")
    callbacks = [e for e in svc.jobs.timeline(job_id) if e["type"] == "callback"]
    assert len(callbacks) == 1 + MAX_DUPLICATES_ON_TIMELINE


def test_done_removes_the_item(svc, job_id):
    inbox = CallbackInbox(svc.redis)
    rec = inbox.record(job_id, STATUS, "{}")
    inbox.done(rec.inbox_id)
    assert inbox.load(rec.inbox_id) is None and svc.redis.zcard(keys.DUE_CALLBACK) == 0


def test_the_seen_counter_names_a_digest_of_the_request_id(svc, job_id):
    """Issue 12: Pixazo's request ids run to 60 characters; the counter's name is short."""
    long_id = "pixverse-v6-text-to-video_9c7e01f7-eebf-4b20-a8d1-e2e775ddf858"
    inbox = CallbackInbox(svc.redis)
    inbox.record(job_id, {**STATUS, "request_id": long_id}, "{}")
    name = seen_field(long_id, "COMPLETED")
    assert len(name) < 30 and name.endswith(":COMPLETED")
    assert svc.redis.hget(keys.job(job_id), name) == "1"
    assert seen_field(long_id, "FAILED") != name and seen_field("other", "COMPLETED") != name


def test_a_callback_counted_under_the_earlier_name_is_still_a_duplicate(svc, job_id):
    """A job that heard a callback before the rename (a rolling deploy) counts it where it is."""
    old_name = f"cbseen:{STATUS['request_id']}:{STATUS['status']}"
    svc.redis.hset(keys.job(job_id), old_name, "1")
    rec = CallbackInbox(svc.redis).record(job_id, STATUS, "{}")
    assert rec.known_job and rec.duplicate
    assert svc.redis.hget(keys.job(job_id), old_name) == "2"
    assert svc.redis.hget(keys.job(job_id), seen_field("pixverse_r1", "COMPLETED")) is None


def test_a_late_callback_on_a_packed_timeline_starts_a_list_that_expires_with_the_job(svc, job_id):
    """A finished job's timeline lives in its hash; a callback heard later is still on the
    timeline, in a list that expires with the job (issue 12: nothing of a job outlives it)."""
    svc.states.transition(job_id, expected=[JobState.QUEUED], to=JobState.CANCELED)
    assert not svc.redis.exists(keys.timeline(job_id))
    inbox = CallbackInbox(svc.redis)
    inbox.record(job_id, STATUS, "{}")
    inbox.record(job_id, STATUS, "{}")  # a duplicate, on the timeline too
    assert 0 < svc.redis.ttl(keys.timeline(job_id)) <= svc.retention_seconds
    assert [e["type"] for e in svc.jobs.timeline(job_id)[-2:]] == ["callback", "callback"]
