"""The client API through the Flask test client: auth, validation, idempotency, listing, cancel."""

from __future__ import annotations

import json

import pytest

from orchestrator.core import catalog, enqueue, keys
from orchestrator.core.clients import ClientStore
from orchestrator.intake import api
from orchestrator.jobs.state import JobState
from tests.helpers import named_round_trips
from tests.orchestrator.model_inputs import IMAGE, INVALID_INPUTS, VALID_INPUTS


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def key(client_factory) -> str:
    return client_factory("acme")[1]


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def assert_error(answer, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.get_data(as_text=True)
    body = answer.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def assert_nothing_stored(svc, sent_tasks) -> None:
    assert sent_tasks == []
    assert svc.redis.zcard(keys.ALL_JOBS) == 0
    assert list(svc.redis.scan_iter("job:*")) == []
    assert list(svc.redis.scan_iter("idem:*")) == []


def create(http, api_key: str, model: str = "pixverse", **extra):
    body = {"model": model, "input": VALID_INPUTS[model], **extra}
    return http.post("/v1/jobs", json=body, headers=auth(api_key))


# --- auth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer pxo_wrong_key_aaaaaaaaaaaaaaaaaaaaaaaa"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer "},
    ],
)
def test_401_without_or_with_wrong_key(http, svc, sent_tasks, headers):
    for method, path in (
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs"),
        ("get", "/v1/models"),
        ("get", "/v1/jobs/job_x"),
        ("post", "/v1/jobs/job_x/cancel"),
        ("post", "/v1/videos/generations"),
    ):
        answer = getattr(http, method)(path, json={"model": "pixverse"}, headers=headers)
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert_nothing_stored(svc, sent_tasks)


def test_another_clients_job_is_404(http, client_factory, key):
    job_id = create(http, key).get_json()["id"]
    other = client_factory("other")[1]
    assert_error(http.get(f"/v1/jobs/{job_id}", headers=auth(other)), 404, "not_found")
    assert_error(http.post(f"/v1/jobs/{job_id}/cancel", headers=auth(other)), 404, "not_found")
    assert http.get("/v1/jobs", headers=auth(other)).get_json()["data"] == []
    assert http.get(f"/v1/jobs/{job_id}", headers=auth(key)).status_code == 200


# --- create --------------------------------------------------------------------------------


def test_the_202_says_queued_even_when_a_worker_moves_the_job_at_once(http, svc, key, monkeypatch):
    """A fast worker can take the submit message before the intake answers: the answer is the
    job as accepted (queued, no attempt), not whatever the worker made of it since."""

    def worker_takes_it_at_once(task_name: str, job_id: str) -> bool:
        assert task_name == enqueue.SUBMIT
        svc.states.transition(
            job_id,
            expected=[JobState.QUEUED],
            to=JobState.SUBMITTED,
            fields={"request_id": "req_fast_worker"},
            incr=["attempts"],
        )
        return True

    monkeypatch.setattr(enqueue, "send", worker_takes_it_at_once)
    answer = create(http, key)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    job = answer.get_json()
    assert (job["status"], job["request_id"], job["attempts"]) == ("queued", None, 0)
    stored = svc.jobs.get(job["id"])
    assert (stored["status"], stored["request_id"]) == ("submitted", "req_fast_worker")


def test_an_intake_costs_the_key_check_and_the_create_and_nothing_else(
    http, svc, sent_tasks, key, monkeypatch
):
    """Once the process has seen the key: one script authenticates and counts the request,
    one stores the job (and its budget commit); the answer is rendered from what it wrote.
    (Before: the key's GET, a pipeline for the client and the counter, then the create.)"""
    assert create(http, key).status_code == 202  # a fresh Redis loads the scripts
    trips = named_round_trips(monkeypatch, svc.redis)
    answer = create(http, key)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert trips == ["EVALSHA", "EVALSHA"]
    assert [task for task, _ in sent_tasks] == [enqueue.SUBMIT] * 2


@pytest.mark.parametrize("model", sorted(VALID_INPUTS))
def test_create_each_model_202_and_one_submit_enqueued(http, svc, sent_tasks, key, model):
    answer = create(http, key, model, metadata={"order": 7})
    assert answer.status_code == 202, answer.get_data(as_text=True)
    job = answer.get_json()
    assert job["id"].startswith("job_") and job["status"] == "queued" and job["model"] == model
    assert job["metadata"] == {"order": 7} and job["request_id"] is None
    assert answer.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert sent_tasks == [(enqueue.SUBMIT, (job["id"],))]
    assert svc.redis.zcard(keys.ALL_JOBS) == 1
    expected = {
        "id",
        "status",
        "model",
        "input",
        "metadata",
        "callback_url",
        "request_id",
        "upstream_status",
        "output",
        "error",
        "estimated_cost_usd",
        "attempts",
        "created_at",
        "updated_at",
        "completed_at",
        # the gateway dialects' names (API.md, "Gateway dialects") and the intake's warnings
        "job_id",
        "created",
        "result",
        "warnings",
    }
    assert set(job) == expected
    assert job["job_id"] == job["id"] and job["result"] is None and job["warnings"] == []


@pytest.mark.parametrize("model", sorted(INVALID_INPUTS))
def test_each_models_irregularity_is_422_with_field_path(http, svc, sent_tasks, key, model):
    body, path = INVALID_INPUTS[model]
    answer = http.post("/v1/jobs", json={"model": model, "input": body}, headers=auth(key))
    error = assert_error(answer, 422, "validation_error")
    assert path in error["details"], error
    assert_nothing_stored(svc, sent_tasks)


def test_v56_t2v_takes_2160p(http, key):
    body = {**VALID_INPUTS["pixverse"], "resolution": "2160p"}
    answer = http.post("/v1/jobs", json={"model": "pixverse", "input": body}, headers=auth(key))
    assert answer.status_code == 202 and answer.get_json()["input"]["resolution"] == "2160p"


def test_v6_i2v_takes_480p_and_v56_i2v_takes_string_duration(http, key):
    body = {**VALID_INPUTS["pixverse-v6-image-to-video"], "resolution": "480p"}
    answer = http.post(
        "/v1/jobs", json={"model": "pixverse-v6-image-to-video", "input": body}, headers=auth(key)
    )
    assert answer.status_code == 202
    i2v = create(http, key, "pixverse-i2v").get_json()
    assert i2v["input"]["duration"] == "5"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": {"prompt": "x"}}, "model"),
        ({"model": "pixverse-v7", "input": {"prompt": "x"}}, "model"),
        ({"model": "pixverse"}, "input"),
        ({"model": "pixverse", "input": []}, "input"),
        ({"model": "pixverse-v6-text-to-video", "input": {}}, "input.prompt"),
        (
            {"model": "pixverse-v6-text-to-video", "input": {"prompt": "x", "bogus": 1}},
            "input.bogus",
        ),
        ({"model": "pixverse-v6-text-to-video", "input": {"prompt": "x"}, "extra": 1}, "extra"),
        (
            {
                "model": "pixverse-v6-text-to-video",
                "input": {"prompt": "x"},
                "callback_url": "ftp://x",
            },
            "callback_url",
        ),
        (
            {
                "model": "pixverse-v6-text-to-video",
                "input": {"prompt": "x"},
                "callback_url": "https://127.0.0.1/hook",
            },
            "callback_url",
        ),
        (
            {"model": "pixverse-v6-text-to-video", "input": {"prompt": "x"}, "metadata": "m"},
            "metadata",
        ),
        ({"model": 5, "input": {"prompt": "x"}}, "model"),
    ],
)
def test_invalid_request_422_stores_and_enqueues_nothing(http, svc, sent_tasks, key, body, field):
    error = assert_error(
        http.post("/v1/jobs", json=body, headers=auth(key)), 422, "validation_error"
    )
    assert field in error["details"], error
    assert_nothing_stored(svc, sent_tasks)


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "{",
        "",
        "[1, 2]",
        '"a string"',
        "null",
        "[" * 100_000 + "]" * 100_000,
        '{"model": "pixverse-v6", "prompt": "\\ud800", "input": {"prompt": "\\ud800"}}',
        '{"model": "pixverse-v6", "prompt": "x", "input": {"prompt": "x"}, "metadata": '
        '{"\\udfff": 1}}',
    ],
)
def test_400_for_bodies_that_are_not_a_json_object(http, svc, sent_tasks, key, data):
    for path in ("/v1/jobs", "/v1/videos/generations"):
        answer = http.post(
            path, data=data, headers={**auth(key), "Content-Type": "application/json"}
        )
        assert_error(answer, 400, "bad_request")
    assert_nothing_stored(svc, sent_tasks)


def test_413_for_a_body_over_the_limit(http, svc, sent_tasks, key):
    big = {"model": "pixverse", "input": {"prompt": "x" * (svc.settings.max_body_bytes + 10)}}
    assert_error(http.post("/v1/jobs", json=big, headers=auth(key)), 413, "payload_too_large")
    assert_nothing_stored(svc, sent_tasks)


# --- idempotency ---------------------------------------------------------------------------


def test_same_key_and_body_returns_the_same_job(http, svc, sent_tasks, key):
    body = {"model": "pixverse", "input": VALID_INPUTS["pixverse"]}
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    first = http.post("/v1/jobs", json=body, headers=headers)
    again = http.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(sent_tasks) == 1 and svc.redis.zcard(keys.ALL_JOBS) == 1


def test_same_key_different_body_is_409(http, svc, sent_tasks, key):
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    first = http.post(
        "/v1/jobs", json={"model": "pixverse", "input": VALID_INPUTS["pixverse"]}, headers=headers
    )
    other = {"model": "pixverse", "input": {**VALID_INPUTS["pixverse"], "duration": 10}}
    error = assert_error(
        http.post("/v1/jobs", json=other, headers=headers), 409, "idempotency_conflict"
    )
    assert error["details"]["job_id"] == first.get_json()["id"]
    assert len(sent_tasks) == 1 and svc.redis.zcard(keys.ALL_JOBS) == 1


def test_idempotency_keys_are_per_client(http, svc, client_factory, key):
    other = client_factory("other")[1]
    body = {"model": "pixverse", "input": VALID_INPUTS["pixverse"]}
    a = http.post("/v1/jobs", json=body, headers={**auth(key), "Idempotency-Key": "k"})
    b = http.post("/v1/jobs", json=body, headers={**auth(other), "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 202
    assert a.get_json()["id"] != b.get_json()["id"]


def test_invalid_request_with_a_key_does_not_burn_the_key(http, svc, sent_tasks, key):
    headers = {**auth(key), "Idempotency-Key": "k"}
    bad = http.post("/v1/jobs", json={"model": "pixverse", "input": {}}, headers=headers)
    assert bad.status_code == 422
    assert_nothing_stored(svc, sent_tasks)
    good = http.post(
        "/v1/jobs", json={"model": "pixverse", "input": VALID_INPUTS["pixverse"]}, headers=headers
    )
    assert good.status_code == 202


def test_overlong_idempotency_key_is_422(http, svc, sent_tasks, key):
    headers = {**auth(key), "Idempotency-Key": "k" * 300}
    answer = http.post(
        "/v1/jobs", json={"model": "pixverse", "input": VALID_INPUTS["pixverse"]}, headers=headers
    )
    assert "Idempotency-Key" in assert_error(answer, 422, "validation_error")["details"]
    assert_nothing_stored(svc, sent_tasks)


# --- rate limit ----------------------------------------------------------------------------


def test_429_with_retry_after_over_the_client_rate_limit(app, svc, client_factory):
    app.extensions["orchestrator"].settings = svc.settings.with_overrides(
        client_rate_limit_per_minute=3
    )
    http = app.test_client()
    key, other = client_factory("acme")[1], client_factory("other")[1]
    codes = [http.get("/v1/models", headers=auth(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    answer = http.get("/v1/models", headers=auth(key))
    error = assert_error(answer, 429, "rate_limited")
    retry = int(answer.headers["Retry-After"])
    assert 1 <= retry <= 61 and error["details"]["retry_after"] == retry
    assert http.get("/v1/models", headers=auth(other)).status_code == 200  # per client


# --- cancel --------------------------------------------------------------------------------


def test_cancel_then_cancel_again_is_409(http, svc, sent_tasks, key):
    job_id = create(http, key).get_json()["id"]
    answer = http.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))
    assert answer.status_code == 200
    job = answer.get_json()
    assert job["status"] == "canceled" and job["error"]["code"] == "canceled"
    assert job["completed_at"]
    assert [t for t, _ in sent_tasks] == [enqueue.SUBMIT, enqueue.DELIVER]
    error = assert_error(
        http.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key)), 409, "not_cancelable"
    )
    assert error["details"]["status"] == "canceled"
    assert len(svc.jobs.event_ids(job_id)) == 1
    assert_error(http.post("/v1/jobs/job_nope/cancel", headers=auth(key)), 404, "not_found")


# --- list ----------------------------------------------------------------------------------


def test_list_filters_and_cursor(http, svc, key, client_factory):
    other = client_factory("other")[1]
    create(http, other)
    ids = []
    for i in range(9):
        ids.append(create(http, key, "pixverse" if i % 2 else "pixverse-i2v").get_json()["id"])
    for job_id in ids[:3]:
        http.post(f"/v1/jobs/{job_id}/cancel", headers=auth(key))

    def listing(**params):
        seen, cursor = [], None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/jobs", query_string=query, headers=auth(key))
            assert page.status_code == 200, page.get_data(as_text=True)
            body = page.get_json()
            assert set(body) == {"data", "next_cursor"}
            seen.extend(j["id"] for j in body["data"])
            cursor = body["next_cursor"]
            if not cursor:
                return seen

    assert listing(limit=2) == list(reversed(ids))
    assert listing(status="", model="", limit="", cursor="") == list(reversed(ids))
    assert listing() == list(reversed(ids))
    assert listing(status="canceled", limit=1) == list(reversed(ids[:3]))
    assert listing(status="queued") == list(reversed(ids[3:]))
    assert listing(model="pixverse", limit=3) == [i for i in reversed(ids) if ids.index(i) % 2]
    assert listing(status="canceled", model="pixverse-i2v", limit=1) == [ids[2], ids[0]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "done"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"model": "nope"}, "model"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "bmFufGpvYl94"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_list_bad_query_is_422(http, key, query, field):
    answer = http.get("/v1/jobs", query_string=query, headers=auth(key))
    assert field in assert_error(answer, 422, "validation_error")["details"]


# --- gateway route -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "extra", "model"),
    [
        ("pixverse-v6", {}, "pixverse-v6-text-to-video"),
        ("pixverse-v6", {"image": IMAGE}, "pixverse-v6-image-to-video"),
        ("pixverse-5-6", {"aspect_ratio": "16:9", "resolution": "720p", "duration": 5}, "pixverse"),
        (
            "pixverse/v5.6",
            {"aspect_ratio": "9:16", "resolution": "1080p", "duration": 10},
            "pixverse",
        ),
        ("pixverse-v5-6", {"image": IMAGE, "resolution": "720p", "duration": 5}, "pixverse-i2v"),
        (
            "pixverse-v5-6",
            {"image_url": IMAGE, "resolution": "720p", "duration": "10"},
            "pixverse-i2v",
        ),
        ("pixverse-c1", {"image": IMAGE}, "pixverse-c1-image-to-video"),
        ("pixverse-v6-text-to-video", {"generate_audio": True}, "pixverse-v6-text-to-video"),
    ],
)
def test_gateway_route_resolves_aliases(http, sent_tasks, key, alias, extra, model):
    body = {"model": alias, "prompt": "a cat", **extra}
    answer = http.post("/v1/videos/generations", json=body, headers=auth(key))
    assert answer.status_code == 202, answer.get_data(as_text=True)
    job = answer.get_json()
    assert job["model"] == model and job["input"]["prompt"] == "a cat"
    if "image" in extra or "image_url" in extra:
        assert job["input"]["image_url"] == IMAGE
    if model == "pixverse-i2v":
        assert isinstance(job["input"]["duration"], str)
    assert sent_tasks == [(enqueue.SUBMIT, (job["id"],))]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "pixverse-v7", "prompt": "x"}, "model"),
        ({"prompt": "x"}, "model"),
        ({"model": "pixverse-v6"}, "input.prompt"),
        ({"model": "pixverse-v6", "prompt": "x", "image": IMAGE, "image_url": IMAGE}, "image"),
        (
            {
                "model": "pixverse-v5-6",
                "prompt": "x",
                "image": IMAGE,
                "resolution": "720p",
                "duration": 7,
            },
            "input.duration",
        ),
    ],
)
def test_gateway_route_invalid_is_422(http, svc, sent_tasks, key, body, field):
    answer = http.post("/v1/videos/generations", json=body, headers=auth(key))
    assert field in assert_error(answer, 422, "validation_error")["details"]
    assert_nothing_stored(svc, sent_tasks)


def test_gateway_idempotency(http, svc, sent_tasks, key):
    headers = {**auth(key), "Idempotency-Key": "g"}
    body = {"model": "pixverse-v6", "prompt": "a cat"}
    first = http.post("/v1/videos/generations", json=body, headers=headers)
    again = http.post("/v1/videos/generations", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"] and len(sent_tasks) == 1


# --- models --------------------------------------------------------------------------------


def test_models_lists_the_catalog(http, key):
    answer = http.get("/v1/models", headers=auth(key))
    assert answer.status_code == 200
    models = {m["id"]: m for m in answer.get_json()["data"]}
    assert set(models) == set(catalog.MODELS)
    v56 = {p["name"]: p for p in models["pixverse"]["parameters"]}
    assert v56["resolution"]["allowed"] == ["720p", "1080p", "2160p"]
    i2v = {p["name"]: p for p in models["pixverse-i2v"]["parameters"]}
    assert i2v["duration"]["allowed"] == ["5", "10"] and i2v["duration"]["type"] == "string"
    v6 = {p["name"]: p for p in models["pixverse-v6-text-to-video"]["parameters"]}
    assert v6["duration"]["default"] == 5 and v6["prompt"]["required"] is True


def test_client_sees_its_own_settings_without_secrets(http, key, svc):
    answer = http.get("/v1/client", headers=auth(key))
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "whsec_" not in text and key not in text
    assert ClientStore(svc.redis).authenticate(key).id == answer.get_json()["id"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_in_metadata_are_422(http, svc, sent_tasks, key, number):
    model_input = json.dumps(VALID_INPUTS["pixverse"])
    data = f'{{"model": "pixverse", "input": {model_input}, "metadata": {{"a": {number}}}}}'
    answer = http.post(
        "/v1/jobs", data=data, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert "metadata" in assert_error(answer, 422, "validation_error")["details"]
    assert_nothing_stored(svc, sent_tasks)


def test_oversized_metadata_is_422(http, svc, sent_tasks, key):
    body = {"model": "pixverse", "input": VALID_INPUTS["pixverse"], "metadata": {"k": "x" * 9000}}
    answer = http.post("/v1/jobs", json=body, headers=auth(key))
    assert "metadata" in assert_error(answer, 422, "validation_error")["details"]
    assert_nothing_stored(svc, sent_tasks)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"callback_url": "http://127.0.0.1/x"}, "callback_url"),
        ({"event_types": ["job.exploded"]}, "event_types.0"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_client_update_validates(http, key, body, field):
    answer = http.patch("/v1/client", json=body, headers=auth(key))
    assert field in assert_error(answer, 422, "validation_error")["details"]


def test_client_update_sets_endpoint(http, key):
    body = {"callback_url": "https://8.8.8.8/hook", "event_types": ["job.completed"]}
    answer = http.patch("/v1/client", json=body, headers=auth(key))
    assert answer.status_code == 200
    assert answer.get_json()["callback_url"] == "https://8.8.8.8/hook"
    assert answer.get_json()["event_types"] == ["job.completed"]


def test_client_update_of_a_client_deleted_meanwhile_is_unauthorized(http, svc, key, monkeypatch):
    # The key was checked, then the client went away before the update: its key names no one.
    monkeypatch.setattr(svc.clients, "update", lambda client_id, **changes: None)
    answer = http.patch("/v1/client", json={"event_types": ["job.completed"]}, headers=auth(key))
    assert_error(answer, 401, "unauthorized")


# --- ids and hostile input -----------------------------------------------------------------

MISSING = "job_" + "0" * 26


def not_found_body(http, method: str, path: str, api_key: str) -> dict:
    answer = getattr(http, method)(path, headers=auth(api_key))
    assert_error(answer, 404, "not_found")
    return answer.get_json()


@pytest.mark.parametrize(
    "suffix", [":timeline", ":events", "x", "\u00e9", "%0A", "%00", " ", ":" + "x" * 5000]
)
def test_malformed_missing_and_foreign_ids_answer_the_same_404(
    http, svc, client_factory, key, suffix
):
    job_id = create(http, key).get_json()["id"]
    other = client_factory("other")[1]
    before = snapshot(svc)
    for method, template in (("get", "/v1/jobs/{}"), ("post", "/v1/jobs/{}/cancel")):
        missing = not_found_body(http, method, template.format(MISSING), key)
        assert not_found_body(http, method, template.format(job_id + suffix), key) == missing
        assert not_found_body(http, method, template.format(job_id.upper()), key) == missing
        assert not_found_body(http, method, template.format(job_id), other) == missing
    assert snapshot(svc) == before


def snapshot(svc) -> dict:
    """Every key with its type and size: what a refused request must leave alone."""
    r = svc.redis
    sizes = {"hash": r.hlen, "list": r.llen, "zset": r.zcard, "set": r.scard, "string": r.strlen}
    return {
        k: (r.type(k), sizes[r.type(k)](k)) for k in r.scan_iter("*") if not k.startswith("rate")
    }


def test_list_status_and_model_examines_a_bounded_number_of_jobs(http, svc, key, monkeypatch):
    """A rare status+model match: each page reads at most the examination cap (in pipelined
    batches), and a page the cap ends early still has a cursor that continues the search."""
    monkeypatch.setattr(api, "LIST_MAX_EXAMINED", 10)
    wanted = create(http, key, "pixverse-i2v").get_json()["id"]
    for _ in range(25):
        create(http, key, "pixverse")
    reads = count_job_reads(svc, monkeypatch)
    found, cursor, pages = [], None, 0
    while True:
        query = {"status": "queued", "model": "pixverse-i2v", "limit": 1}
        reads.clear()
        page = http.get("/v1/jobs", query_string={**query, "cursor": cursor}, headers=auth(key))
        assert page.status_code == 200, page.get_data(as_text=True)
        body = page.get_json()
        found += [j["id"] for j in body["data"]]
        assert sum(reads) <= 10 + 1 and len(reads) <= 3  # examined + the page; few round trips
        cursor, pages = body["next_cursor"], pages + 1
        if not cursor:
            break
        assert pages < 10
    assert found == [wanted] and pages >= 3


def count_job_reads(svc, monkeypatch) -> list[int]:
    """Job hashes read, one entry per round trip to Redis."""
    reads: list[int] = []
    store = svc.jobs
    get_raw, get_many = store.get_raw, store.get_many
    monkeypatch.setattr(store, "get_raw", lambda job_id: reads.append(1) or get_raw(job_id))
    monkeypatch.setattr(store, "get_many", lambda ids: reads.append(len(ids)) or get_many(ids))
    return reads


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "-1"},
        {"limit": str(10**30)},
        {"limit": "1e3"},
        {"status": "é" * 10_000},
        {"model": "x" * 100_000},
        {"cursor": "x" * 100_000},
        {"cursor": "\u00e9\u00e9"},
        {"cursor": "aW5mfGpvYl94"},  # inf|job_x
        {"cursor": "MWUzMDl8am9iX3g"},  # 1e309|job_x
    ],
)
def test_list_hostile_queries_are_422(http, key, query):
    answer = http.get("/v1/jobs", query_string=query, headers=auth(key))
    assert_error(answer, 422, "validation_error")
