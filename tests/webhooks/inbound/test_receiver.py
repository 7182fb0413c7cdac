"""The Pixazo callback receiver: identify, verify, parse, record, answer; side effects in a task."""

from __future__ import annotations

import json

import pytest

from orchestrator.core import enqueue, keys
from orchestrator.core.tokens import callback_token
from orchestrator.jobs.store import NewJob

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


def test_valid_callback_200_and_one_task(http, svc, sent_tasks, job_id):
    answer = http.post(url(svc, job_id), json=COMPLETED)
    assert answer.status_code == 200
    assert answer.get_json() == {"received": True, "duplicate": False}
    assert len(sent_tasks) == 1 and sent_tasks[0][0] == enqueue.APPLY_CALLBACK
    inbox_id = sent_tasks[0][1][0]
    stored = json.loads(svc.redis.get(keys.inbox(inbox_id)))
    assert stored["job_id"] == job_id and stored["status"]["status"] == "COMPLETED"
    assert svc.jobs.state_of(job_id).value == "queued"  # applying is the task's work


def test_duplicate_200_and_no_task(http, svc, sent_tasks, job_id):
    http.post(url(svc, job_id), json=COMPLETED)
    for _ in range(3):
        again = http.post(url(svc, job_id), json=COMPLETED)
        assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert len(sent_tasks) == 1
    assert svc.redis.zcard(keys.DUE_CALLBACK) == 1


def test_different_status_is_a_new_task(http, svc, sent_tasks, job_id):
    http.post(url(svc, job_id), json={"request_id": "pixverse_0b2c", "status": "PROCESSING"})
    http.post(url(svc, job_id), json=COMPLETED)
    assert [t for t, _ in sent_tasks] == [enqueue.APPLY_CALLBACK] * 2


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
    assert answer.status_code == 200 and len(sent_tasks) == 1


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
