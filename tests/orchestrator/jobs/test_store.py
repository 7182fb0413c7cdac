"""The job store: atomic create with idempotency keys, rendering, and cursor pagination."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from orchestrator.core import keys
from orchestrator.jobs.state import JobState
from orchestrator.jobs.store import IDEMPOTENCY_TTL_SECONDS, NewJob, decode_cursor, encode_cursor
from orchestrator.services import FIRST_SUBMIT_GRACE_SECONDS
from tests.orchestrator.script_keys import KeysSpy, changed, snapshot

NOW = 1_800_000_000.123


def job(client: str = "cli_a", model: str = "pixverse") -> NewJob:
    return NewJob(client, model, {"prompt": "p"}, {"k": "v"}, None, 0.25, "terminal")


def test_create_stores_a_queued_job_with_indexes_and_due_times(svc):
    result = svc.jobs.create(job(), now=NOW)
    assert result.created
    jid = result.job_id
    rendered = svc.jobs.get(jid)
    assert rendered["status"] == "queued" and rendered["model"] == "pixverse"
    assert rendered["input"] == {"prompt": "p"} and rendered["metadata"] == {"k": "v"}
    assert rendered["request_id"] is None and rendered["output"] is None
    assert rendered["estimated_cost_usd"] == 0.25 and rendered["attempts"] == 0
    assert rendered["completed_at"] is None and rendered["callback_url"] is None
    ms = int(NOW * 1000)
    r = svc.redis
    for index in (
        keys.ALL_JOBS,
        keys.status_index("queued"),
        keys.client_index("cli_a"),
        keys.client_status_index("cli_a", "queued"),
        keys.model_index("pixverse"),
        f"{keys.client_index('cli_a')}:model:pixverse",
    ):
        assert r.zscore(index, jid) == ms, index
    assert r.zscore(keys.DUE_SUBMIT, jid) == pytest.approx(NOW + FIRST_SUBMIT_GRACE_SECONDS)
    assert r.zscore(keys.DUE_DEADLINE, jid) == pytest.approx(
        NOW + svc.settings.job_deadline_seconds
    )
    assert [e["type"] for e in svc.jobs.timeline(jid)] == ["intake"]


def test_get_hides_other_clients_jobs(svc):
    jid = svc.jobs.create(job("cli_a")).job_id
    assert svc.jobs.get(jid, "cli_a") is not None
    assert svc.jobs.get(jid, "cli_b") is None
    assert svc.jobs.get("job_missing") is None


def test_idempotency_key_returns_the_first_job(svc):
    first = svc.jobs.create(job(), idempotency_key="k1", fingerprint="f")
    again = svc.jobs.create(job(), idempotency_key="k1", fingerprint="f")
    assert first.created and not again.created
    assert again.job_id == first.job_id and again.fingerprint_matches
    assert svc.redis.zcard(keys.ALL_JOBS) == 1
    ttl = svc.redis.ttl(keys.idempotency("cli_a", "k1"))
    assert IDEMPOTENCY_TTL_SECONDS - 5 <= ttl <= IDEMPOTENCY_TTL_SECONDS


def test_idempotency_fingerprint_mismatch_is_reported_and_stores_nothing(svc):
    first = svc.jobs.create(job(), idempotency_key="k1", fingerprint="f1")
    other = svc.jobs.create(job(), idempotency_key="k1", fingerprint="f2")
    assert not other.created and other.job_id == first.job_id
    assert not other.fingerprint_matches
    assert svc.redis.zcard(keys.ALL_JOBS) == 1
    assert len(list(svc.redis.scan_iter("job:*:timeline"))) == 1


def test_idempotency_keys_are_per_client(svc):
    a = svc.jobs.create(job("cli_a"), idempotency_key="same", fingerprint="f")
    b = svc.jobs.create(job("cli_b"), idempotency_key="same", fingerprint="f")
    assert a.created and b.created and a.job_id != b.job_id


def test_concurrent_creates_with_one_key_make_one_job(svc):
    results = []
    barrier = threading.Barrier(16)

    def create() -> None:
        barrier.wait()
        results.append(svc.jobs.create(job(), idempotency_key="race", fingerprint="f"))

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 16
    assert sum(r.created for r in results) == 1
    assert len({r.job_id for r in results}) == 1
    assert svc.redis.zcard(keys.ALL_JOBS) == 1


def page_all(svc, index: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        ids, cursor = svc.jobs.list_ids(index, limit, cursor)
        assert len(ids) <= limit
        seen.extend(ids)
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("limit", [1, 7, 20, 100])
def test_pagination_is_newest_first_and_complete(svc, limit):
    ids = [svc.jobs.create(job(), now=NOW + i).job_id for i in range(45)]
    assert page_all(svc, keys.client_index("cli_a"), limit) == list(reversed(ids))


@pytest.mark.parametrize("limit", [1, 20, 100])
def test_pagination_with_many_jobs_in_the_same_millisecond(svc, limit):
    older = [svc.jobs.create(job(), now=NOW - 1).job_id for _ in range(5)]
    same = [svc.jobs.create(job(), now=NOW).job_id for _ in range(450)]
    newer = svc.jobs.create(job(), now=NOW + 1).job_id
    pages = page_all(svc, keys.client_index("cli_a"), limit)
    assert len(pages) == len(set(pages)) == 456
    assert pages[0] == newer
    assert set(pages[1:451]) == set(same)
    assert pages[1:451] == sorted(same, reverse=True)  # ties: stable, by id
    assert set(pages[451:]) == set(older)


def test_exact_multiple_of_the_limit_ends_without_an_empty_page(svc):
    for i in range(40):
        svc.jobs.create(job(), now=NOW + i)
    ids, cursor = svc.jobs.list_ids(keys.client_index("cli_a"), 20)
    ids2, cursor2 = svc.jobs.list_ids(keys.client_index("cli_a"), 20, cursor)
    assert len(ids) == len(ids2) == 20 and cursor2 is None


def test_list_filter_predicate_pages_through_what_it_skips(svc):
    for i in range(60):
        svc.jobs.create(job(model="pixverse" if i % 3 else "pixverse-i2v"), now=NOW + i)
    index = keys.client_index("cli_a")
    keep = lambda raw: raw["model"] == "pixverse-i2v"  # noqa: E731
    seen, cursor = [], None
    while True:
        ids, cursor = svc.jobs.list_ids(index, 7, cursor, keep)
        seen.extend(ids)
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 20
    assert all(svc.jobs.get(i)["model"] == "pixverse-i2v" for i in seen)


def test_a_filtered_page_reads_at_most_the_examination_cap(svc, monkeypatch):
    for i in range(30):
        svc.jobs.create(job(model="pixverse-i2v" if i == 0 else "pixverse"), now=NOW + i)
    index = keys.client_index("cli_a")
    keep = lambda raw: raw["model"] == "pixverse-i2v"  # noqa: E731
    read: list[int] = []
    get_many = svc.jobs.get_many
    monkeypatch.setattr(svc.jobs, "get_many", lambda ids: read.append(len(ids)) or get_many(ids))
    pages = []
    cursor = None
    while True:
        read.clear()
        page = svc.jobs.list_range(index, 1, cursor, keep=keep, max_examined=8)
        assert sum(read) <= 8
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [p.examined_all for p in pages] == [False, False, False, True]
    assert [len(p.ids) for p in pages] == [0, 0, 0, 1]


def test_list_ids_is_the_bounded_list_range(svc, monkeypatch):
    for i in range(10):
        svc.jobs.create(job(model="pixverse"), now=NOW + i)
    monkeypatch.setattr(svc.jobs, "get_raw", lambda job_id: pytest.fail("one read per job"))
    keep = lambda raw: raw["model"] == "pixverse"  # noqa: E731
    ids, cursor = svc.jobs.list_ids(keys.client_index("cli_a"), 4, None, keep)
    assert len(ids) == 4 and cursor


def test_cursor_roundtrip_and_garbage():
    assert decode_cursor(encode_cursor(1234.0, "job_x")) == (1234.0, "job_x")
    assert decode_cursor(None) is None
    for junk in ("!!!", "bm9waXBl", base64.urlsafe_b64encode(b"abc|job").decode()):
        with pytest.raises(ValueError):
            decode_cursor(junk)


@pytest.mark.parametrize("score", ["nan", "inf", "-inf"])
def test_non_finite_cursor_scores_are_refused(score):
    cursor = base64.urlsafe_b64encode(f"{score}|job_x".encode()).decode()
    with pytest.raises(ValueError):
        decode_cursor(cursor)


@pytest.mark.parametrize("idempotency_key", [None, "idem-1"])
def test_create_touches_only_the_keys_it_passes(svc, monkeypatch, idempotency_key):
    spy = KeysSpy(svc.jobs._create)
    monkeypatch.setattr(svc.jobs, "_create", spy)
    before = snapshot(svc.redis)
    jid = svc.jobs.create(job(), idempotency_key=idempotency_key, now=NOW).job_id
    touched = changed(before, snapshot(svc.redis))
    assert keys.job(jid) in touched and keys.client_model_index("cli_a", "pixverse") in touched
    assert touched <= set(spy.keys), touched - set(spy.keys)


def test_a_job_hash_keeps_no_empty_fields_and_reads_like_one_that_spelled_them_out(svc):
    """Issue 12: a field left at its empty default is not stored. A job written before
    (every field spelled out, input with spaces) reads the same, and still moves."""
    bare = NewJob("cli_a", "pixverse", {"prompt": "p", "n": 1}, {}, None, None, "terminal")
    jid = svc.jobs.create(bare, now=NOW).job_id
    stored = svc.jobs.get_raw(jid)
    assert stored is not None
    assert not {"metadata", "callback_url", "estimated_cost_usd", "warnings", "attempts"} & set(
        stored
    )
    assert "" not in stored.values() and stored["input"] == '{"prompt":"p","n":1}'
    old_id = jid.replace("job_", "job_0", 1)[: len(jid)]
    old = {
        **stored,
        "id": old_id,
        "input": json.dumps(bare.input),
        "metadata": "{}",
        "callback_url": "",
        "estimated_cost_usd": "",
        "attempts": "0",
        "warnings": "[]",
    }
    svc.redis.hset(keys.job(old_id), mapping=old)
    assert svc.jobs.get(old_id) == {**svc.jobs.get(jid), "id": old_id, "job_id": old_id}
    for job_id in (jid, old_id):
        moved = svc.states.transition(
            job_id, expected=[JobState.QUEUED], to=JobState.SUBMITTING, incr=("attempts",)
        )
        assert moved.applied and svc.jobs.get(job_id)["attempts"] == 1


def test_set_fields_are_stored_compactly(svc):
    full = NewJob(
        "cli_a",
        "pixverse",
        {"prompt": "p"},
        {"k": "v"},
        "https://x.test/h",
        0.25,
        "terminal",
        warnings=({"field": "seed", "message": "ignored"},),
    )
    jid = svc.jobs.create(full, now=NOW).job_id
    stored = svc.jobs.get_raw(jid)
    assert stored is not None
    assert stored["metadata"] == '{"k":"v"}' and stored["callback_url"] == "https://x.test/h"
    assert stored["estimated_cost_usd"] == "0.25"
    assert json.loads(stored["warnings"]) == [{"field": "seed", "message": "ignored"}]
    rendered = svc.jobs.get(jid)
    assert rendered["metadata"] == {"k": "v"} and rendered["warnings"] == list(full.warnings)


def test_a_request_binding_has_a_short_key_and_one_bound_the_old_way_still_reads(svc):
    request = "pixverse-v6-text-to-video_07ab773d-8201-4a85-a8da-9ded3e01d148"
    svc.jobs.bind_request(request, "job_new", 600)
    (name,) = [k for k in svc.redis.scan_iter() if svc.redis.get(k) == "job_new"]
    assert name.startswith("rqid:") and len(name) < 24 and request not in name
    assert 0 < svc.redis.ttl(name) <= 600
    assert svc.jobs.job_for_request(request) == "job_new"
    svc.redis.set(keys.request_id("pv-old"), "job_old", ex=600)  # as stored before issue 12
    assert svc.jobs.job_for_request("pv-old") == "job_old"
    assert svc.jobs.job_for_request("pv-unknown") is None
    svc.jobs.bind_request("pv-old", "job_rebound", 600)
    assert svc.jobs.job_for_request("pv-old") == "job_rebound"


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "metadata": {"order": 7, "tags": ["a"]},
            "callback_url": "https://consumer.example/hook",
            "estimated_cost_usd": 0.65,
            "warnings": ({"code": "renamed", "message": "x"},),
        },
    ],
)
def test_the_created_job_is_the_job_a_read_returns(svc, extra):
    """The intake answers with ``CreateResult.job`` instead of reading the job back."""
    new = NewJob(**{**job().__dict__, **extra})
    result = svc.jobs.create(new)
    assert result.created and result.job is not None
    assert result.job == svc.jobs.get(result.job_id)
    replay = svc.jobs.create(new, idempotency_key="k1")
    again = svc.jobs.create(new, idempotency_key="k1")
    assert replay.job is not None and again.job is None  # a replay reads the job it names


def test_a_job_stores_no_field_it_can_derive_and_answers_them_all(svc):
    """Issue 12: no id (its key's), created_at (created_ms), updated_at (created_at, then the
    terminal move's completed_at) nor the default webhook mode in the hash; every reader sees
    them as before, and the intake's answer says what a read says."""
    result = svc.jobs.create(job(), now=NOW)
    stored = svc.redis.hgetall(keys.job(result.job_id))
    assert not {"id", "created_at", "updated_at", "webhook_mode"} & set(stored)
    raw = svc.jobs.get_raw(result.job_id)
    assert raw["id"] == result.job_id and raw["created_at"] == "2027-01-15T08:00:00.123Z"
    assert raw["updated_at"] == raw["created_at"]
    assert svc.jobs.get(result.job_id) == result.job
    svc.states.transition(result.job_id, expected=[JobState.QUEUED], to=JobState.SUBMITTED)
    moved = svc.jobs.get(result.job_id)
    assert moved["updated_at"] != moved["created_at"] and moved["completed_at"] is None
    svc.states.transition(result.job_id, expected=[JobState.SUBMITTED], to=JobState.CANCELED)
    assert "updated_at" not in svc.redis.hgetall(keys.job(result.job_id))
    done = svc.jobs.get(result.job_id)
    assert done["completed_at"] and done["updated_at"] == done["completed_at"]
    assert [j["id"] for j in (svc.jobs.get_many([result.job_id]))] == [result.job_id]


def test_a_job_hash_written_before_issue_12_reads_as_it_did(svc):
    result = svc.jobs.create(job(), now=NOW)
    name = keys.job(result.job_id)
    older = {
        "id": result.job_id,
        "created_at": "2027-01-15T08:00:00.124Z",  # a millisecond off created_ms: kept as is
        "updated_at": "2027-01-15T08:00:09.000Z",
        "webhook_mode": "sync",
    }
    svc.redis.hset(name, mapping=older)
    rendered = svc.jobs.get(result.job_id)
    assert {k: rendered[k] for k in ("id", "created_at", "updated_at")} == {
        k: older[k] for k in ("id", "created_at", "updated_at")
    }
    assert svc.jobs.get_raw(result.job_id)["webhook_mode"] == "sync"
