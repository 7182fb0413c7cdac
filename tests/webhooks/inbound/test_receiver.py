"""The Pixazo callback receiver: identify, verify, parse, record, apply a new callback, answer;
the event's delivery in a task, and the apply task only as the safety net."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from orchestrator.core import clock, enqueue, keys
from orchestrator.core.tokens import callback_token
from orchestrator.jobs.state import JobState, TransitionResult
from orchestrator.jobs.store import NewJob
from orchestrator.reconcile import steps
from tests.helpers import count_commands
from webhooks.inbound.apply import READ_BACK
from webhooks.inbound.inbox import APPLY_GRACE_SECONDS
from workers.callbacks import apply_callback

COMPLETED = {
    "request_id": "pixverse_0b2c",
    "status": "COMPLETED",
    "output": {"media_url": ["https://cdn.example/v.mp4"], "media_type": "video/mp4"},
}


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def job_id(svc) -> str:
    return svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id


def url(svc, job_id: str, token: str | None = None) -> str:
    token = token if token is not None else callback_token(svc.settings.secret_key, job_id)
    return f"/webhooks/pixazo/{job_id}/{token}"


def snapshot(svc) -> dict:
    r = svc.redis
    out = {}
    for key in sorted(r.scan_iter("*")):
        kind = r.type(key)
        out[key] = {
            "hash": lambda k: r.hgetall(k),
            "list": lambda k: r.lrange(k, 0, -1),
            "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
            "string": lambda k: r.get(k),
            "set": lambda k: r.smembers(k),
        }[kind](key)
    return out


def transitions(svc, job_id: str) -> list[dict]:
    return [e for e in svc.jobs.timeline(job_id) if e["type"] == "transition"]


def beat_resends(svc, sent_tasks, after: float) -> list[str]:
    """What beat's callbacks batch sends ``after`` seconds from now: the inbox ids it re-sends."""
    before = len(sent_tasks)
    steps.run_batch(svc, "callbacks", now=clock.now() + after)
    sent = sent_tasks[before:]
    assert all(name == enqueue.APPLY_CALLBACK for name, _ in sent), sent
    return [args[0] for _, args in sent]


def test_valid_callback_200_applied_in_the_request(http, svc, sent_tasks, job_id):
    answer = http.post(url(svc, job_id), json=COMPLETED)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": True, "duplicate": False}
    job = svc.jobs.get(job_id)
    assert job["status"] == "completed" and job["output"] == COMPLETED["output"]
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]  # the event's delivery, no apply task
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0 and not svc.redis.keys("inbox:*")
    assert svc.jobs.job_for_request(COMPLETED["request_id"]) == job_id
    assert len(svc.jobs.event_ids(job_id)) == 1
    assert beat_resends(svc, sent_tasks, APPLY_GRACE_SECONDS + 1) == []


def test_the_apply_decides_on_what_the_record_read(http, svc, sent_tasks, job_id, monkeypatch):
    """The record's round trip reads the job back: the apply does not read it again."""

    def no_read(job_id: str):
        raise AssertionError("the job was read again")

    monkeypatch.setattr(svc.jobs, "get_raw", no_read)
    assert http.post(url(svc, job_id), json=COMPLETED).status_code == 200
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED


def test_a_first_callback_costs_the_record_and_the_move_and_one_transaction(
    http, svc, sent_tasks, job_id, monkeypatch
):
    """The record reads back the job's client and model too, so the move (which names its
    index keys by them) does not read them again: nothing but the two scripts and the closing
    transaction (request binding, inbox done) reaches Redis in the request."""
    calls = count_commands(monkeypatch, svc.redis)
    assert http.post(url(svc, job_id), json=COMPLETED).status_code == 200
    # A fresh Redis answers NOSCRIPT to a script's first EVALSHA: it is loaded and sent again.
    others = [c[0] for c in calls if c[0] not in ("EVALSHA", "SCRIPT LOAD")]
    scripts = {c[1] for c in calls if c[0] == "EVALSHA"}
    assert others == [] and len(scripts) == 2, [c[:4] for c in calls]
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED
    [binding] = svc.redis.keys("rqid:*")  # lives as long as the job's retention, and a day
    assert 0 < svc.redis.ttl(binding) <= svc.retention_seconds + 86400


def test_duplicate_200_one_round_trip_and_nothing_else(http, svc, sent_tasks, job_id, monkeypatch):
    http.post(url(svc, job_id), json=COMPLETED)
    timeline = svc.jobs.timeline(job_id)
    calls = count_commands(monkeypatch, svc.redis)
    for _ in range(3):
        again = http.post(url(svc, job_id), json=COMPLETED)
        assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert [c[0] for c in calls] == ["EVALSHA"] * 3, calls
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0 and len(transitions(svc, job_id)) == 1
    assert [e for e in svc.jobs.timeline(job_id) if e["type"] != "callback"] == [
        e for e in timeline if e["type"] != "callback"
    ]


def test_different_status_is_applied_too(http, svc, sent_tasks, job_id):
    http.post(url(svc, job_id), json={"request_id": "pixverse_0b2c", "status": "PROCESSING"})
    assert svc.jobs.state_of(job_id) is JobState.PROCESSING
    http.post(url(svc, job_id), json=COMPLETED)
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0


def test_a_late_status_is_recorded_and_ignored_in_the_request(http, svc, sent_tasks, job_id):
    http.post(url(svc, job_id), json=COMPLETED)
    late = http.post(url(svc, job_id), json={"request_id": "pixverse_0b2c", "status": "QUEUED"})
    assert late.status_code == 200 and late.get_json() == {"received": True, "duplicate": False}
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED
    assert svc.jobs.timeline(job_id)[-1]["type"] == "ignored"
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0


@pytest.mark.parametrize(
    "where", ["transition", "bind_and_done", "after_move", "unexpected"], ids=str
)
def test_a_failure_after_the_record_is_200_and_the_task_applies_it_later(
    app, http, svc, sent_tasks, job_id, monkeypatch, where, caplog
):
    """Redis fails (or a bug raises) once the callback is recorded: Pixazo still gets its 200,
    the entry stays, and beat's task applies it after the grace, exactly once."""
    real_move = svc.states.transition
    real_pipeline = svc.redis.pipeline

    def failing_move(*args, **kwargs):
        if where == "transition":
            raise redis.ConnectionError("Redis went away")
        real_move(*args, **kwargs)
        if where == "after_move":
            raise redis.TimeoutError("Redis timed out after the move")
        raise ValueError("a bug")

    def failing_pipeline(*args, **kwargs):
        pipe = real_pipeline(*args, **kwargs)
        monkeypatch.setattr(pipe, "execute", broken)
        return pipe

    def broken() -> None:
        raise redis.ConnectionError("Redis went away before the binding and the done")

    with monkeypatch.context() as mp:
        if where == "bind_and_done":
            mp.setattr(svc.redis, "pipeline", failing_pipeline)
        else:
            mp.setattr(svc.states, "transition", failing_move)
        with caplog.at_level(logging.WARNING, logger="webhooks.inbound.receiver"):
            answer = http.post(url(svc, job_id), json=COMPLETED)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": True, "duplicate": False}
    # Redis away now and then is expected; a bug is an error (Sentry takes those).
    [logged] = [r for r in caplog.records if r.name == "webhooks.inbound.receiver"]
    assert logged.levelno == (logging.ERROR if where == "unexpected" else logging.WARNING)
    moved = where in ("bind_and_done", "after_move", "unexpected")
    assert svc.jobs.state_of(job_id) is (JobState.COMPLETED if moved else JobState.QUEUED)
    ((inbox_id, resend_at),) = svc.redis.zrange(keys.DUE_CALLBACK, 0, -1, withscores=True)
    assert resend_at >= clock.now() + APPLY_GRACE_SECONDS - 1
    assert beat_resends(svc, sent_tasks, APPLY_GRACE_SECONDS + 1) == [inbox_id]
    with app.app_context():
        outcome = apply_callback(inbox_id)
    assert outcome == ("already past this status" if moved else "applied")
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED
    assert len(transitions(svc, job_id)) == 1 and len(svc.jobs.event_ids(job_id)) == 1
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0 and not svc.redis.exists(keys.inbox(inbox_id))
    (event_id,) = svc.jobs.event_ids(job_id).values()
    delivers = [args for t, args in sent_tasks if t == enqueue.DELIVER]
    assert delivers in ([], [(event_id,)])  # else beat's due:delivery drain sends it
    assert svc.redis.zscore(keys.DUE_DELIVERY, event_id) is not None


@pytest.mark.parametrize("first", ["task", "receiver"])
def test_the_receiver_and_a_late_task_racing_move_the_job_once(
    app, http, svc, sent_tasks, job_id, monkeypatch, first
):
    """Both decide on the job as they read it (queued); the one that moves second finds it
    completed, and the compare-and-set refuses it: one move, one event, one delivery."""
    real_move = svc.states.transition
    inbox_ids: list[str] = []
    real_record = svc.inbox.record

    def record(*args, **kwargs):
        rec = real_record(*args, **kwargs)
        inbox_ids.append(rec.inbox_id)
        return rec

    results: list[TransitionResult] = []

    def interleaved(*args, **kwargs):
        if len(results) == 0 and first == "task":  # the receiver read the job; now the task runs
            results.append(None)
            with app.app_context():
                assert apply_callback(inbox_ids[0]) == "applied"
        elif len(results) == 0:  # the task read the job; the receiver's whole apply runs now
            results.append(None)
            assert http.post(url(svc, job_id), json=COMPLETED).status_code == 200
        result = real_move(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(svc.inbox, "record", record)
    if first == "receiver":  # the web process's apply never started: the task is the late one
        rec = real_record(job_id, COMPLETED, "{}", READ_BACK)
        inbox_ids.append(rec.inbox_id)
        monkeypatch.setattr(svc.inbox, "record", lambda *a, **k: rec)
    monkeypatch.setattr(svc.states, "transition", interleaved)
    if first == "task":
        assert http.post(url(svc, job_id), json=COMPLETED).status_code == 200
    else:
        with app.app_context():
            assert apply_callback(inbox_ids[0]) == "already past this status"
    applied = [r for r in results if r is not None and r.applied]
    assert len(applied) == 1 and len(results) == 3
    assert svc.jobs.state_of(job_id) is JobState.COMPLETED
    assert len(transitions(svc, job_id)) == 1 and len(svc.jobs.event_ids(job_id)) == 1
    assert [t for t, _ in sent_tasks] == [enqueue.DELIVER]
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0
    assert svc.jobs.timeline(job_id)[-1]["type"] == "ignored"


def test_a_job_that_keeps_changing_is_given_up_on_after_a_bounded_number_of_reads(
    http, svc, sent_tasks, job_id, monkeypatch
):
    """A callback never loops in the request: a guarded move is retried a fixed few times."""
    calls: list[object] = []

    def always_guarded(*args, **kwargs):
        calls.append(args)
        return TransitionResult(applied=False, previous=JobState.QUEUED, guarded=True)

    monkeypatch.setattr(svc.states, "transition", always_guarded)
    answer = http.post(url(svc, job_id), json=COMPLETED)
    assert answer.status_code == 200 and len(calls) == 3
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 0  # settled as "the job kept changing"


@pytest.mark.parametrize(
    "token", ["0" * 64, "abc", "x" * 64, "%C3%A9" * 64, "%00", "../../v1/jobs"]
)
def test_forged_token_404_nothing_changes(http, svc, sent_tasks, job_id, token):
    before = snapshot(svc)
    answer = http.post(url(svc, job_id, token), json=COMPLETED)
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    assert sent_tasks == [] and snapshot(svc) == before


def test_token_of_another_job_is_refused(http, svc, sent_tasks, job_id):
    other = svc.jobs.create(NewJob("cli_a", "pixverse", {}, {}, None, None, "terminal")).job_id
    before = snapshot(svc)
    answer = http.post(
        url(svc, job_id, callback_token(svc.settings.secret_key, other)), json=COMPLETED
    )
    assert answer.status_code == 404 and sent_tasks == [] and snapshot(svc) == before


def test_unknown_job_404(http, svc, sent_tasks):
    missing = "job_01abcdefghjkmnpqrstvwxyz00"
    before = snapshot(svc)
    answer = http.post(url(svc, missing), json=COMPLETED)
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"
    assert sent_tasks == [] and snapshot(svc) == before
    bad_id = http.post(url(svc, "not-a-job-id"), json=COMPLETED)
    assert bad_id.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[1]",
        b"null",
        b"[" * 50_000 + b"]" * 50_000,
        json.dumps({"status": "COMPLETED"}).encode(),
        json.dumps({"request_id": "r"}).encode(),
        json.dumps({"request_id": "r", "status": "DONE"}).encode(),
        json.dumps({"request_id": "", "status": "COMPLETED"}).encode(),
        json.dumps({"request_id": 5, "status": "COMPLETED"}).encode(),
        json.dumps(
            {"request_id": "r", "status": "COMPLETED", "output": {"media_url": "x"}}
        ).encode(),
        b"\xff\xfe\x00garbage",
        b'{"request_id": "\\ud800", "status": "COMPLETED"}',  # a lone surrogate
        b'{"request_id": "r", "status": "FAILED", "error": {"\\udfff": 1}}',
    ],
)
def test_bad_body_400_nothing_changes(http, svc, sent_tasks, job_id, body):
    before = snapshot(svc)
    answer = http.post(url(svc, job_id), data=body, content_type="application/json")
    assert answer.status_code == 400, answer.get_data(as_text=True)
    error = answer.get_json()["error"]
    assert error["code"] == "bad_request" and set(error) == {"code", "message", "details"}
    assert sent_tasks == [] and snapshot(svc) == before


def test_receiver_needs_no_api_key_and_ignores_content_type(http, svc, sent_tasks, job_id):
    answer = http.post(url(svc, job_id), data=json.dumps(COMPLETED), content_type="text/plain")
    assert answer.status_code == 200 and svc.jobs.state_of(job_id) is JobState.COMPLETED


@pytest.mark.parametrize("suffix", [":timeline", ":events", "0", "\u00e9"])
def test_a_malformed_job_id_is_the_same_404_even_with_its_own_valid_token(
    http, svc, sent_tasks, job_id, suffix
):
    """The id is checked before anything else: a token that is right for the malformed id
    (only we could make one) still never lets ``job_...:timeline`` reach a Redis key."""
    missing = http.post(url(svc, "job_01abcdefghjkmnpqrstvwxyz00"), json=COMPLETED)
    before = snapshot(svc)
    answer = http.post(url(svc, job_id + suffix), json=COMPLETED)
    assert answer.status_code == 404 and answer.get_json() == missing.get_json()
    assert sent_tasks == [] and snapshot(svc) == before
