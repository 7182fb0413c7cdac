"""The apiin.one dialect: each parameter form it documents, each refusal, and its routes
(``POST /api/v1/videos/generations``, ``GET /api/v1/tasks/{task_id}``) over ordinary jobs."""

from __future__ import annotations

import pytest

from orchestrator.core import keys
from orchestrator.core.errors import ApiError
from orchestrator.intake.dialects import apiinone
from orchestrator.jobs.state import JobState

IMAGE = "https://images.example.com/castle.png"
# The page's example request body, verbatim.
PAGE_EXAMPLE = {
    "model": "pixverse-5-6",
    "prompt": "A dragon flying over a medieval castle, fantasy style",
    "resolution": "720p",
    "duration": 5,
    "thinking_type": "auto",
}


def refusal(body) -> dict:
    with pytest.raises(ApiError) as caught:
        apiinone.to_job(body)
    assert caught.value.status == 422 and caught.value.code == "validation_error"
    return caught.value.details


# --- translation ---------------------------------------------------------------------------------


def test_the_page_example_is_v56_text_to_video_with_auto_thinking_left_out():
    translation = apiinone.to_job(PAGE_EXAMPLE)
    assert translation.model == "pixverse"
    assert translation.input == {
        "prompt": PAGE_EXAMPLE["prompt"],
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    }
    assert translation.warnings == () and translation.envelope == {}


def test_defaults_fill_what_pixazo_requires():
    translation = apiinone.to_job({"model": "pixverse-5-6", "prompt": "a fox"})
    assert translation.input == {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    }


def test_every_honourable_parameter_is_carried():
    body = {
        "model": "pixverse-5-6",
        "prompt": "a fox",
        "resolution": "1080p",
        "duration": 10,
        "resolution_ratio": "9:16",
        "generate_audio_switch": False,
        "thinking_type": "auto",
        "negative_prompt": "blur",
        "callback_url": "https://hooks.example.com/x",
        "metadata": {"order": 7},
    }
    translation = apiinone.to_job(body)
    assert translation.input == {
        "prompt": "a fox",
        "aspect_ratio": "9:16",
        "resolution": "1080p",
        "duration": 10,
        "negative_prompt": "blur",
    }
    assert translation.envelope == {
        "callback_url": "https://hooks.example.com/x",
        "metadata": {"order": 7},
    }
    assert translation.job_request()["model"] == "pixverse"


def test_a_whole_float_duration_is_an_integer():
    assert apiinone.to_job({**PAGE_EXAMPLE, "duration": 10.0}).input["duration"] == 10


def test_image_selects_v56_image_to_video_with_a_string_duration():
    translation = apiinone.to_job({**PAGE_EXAMPLE, "image": IMAGE, "duration": 10})
    assert translation.model == "pixverse-i2v"
    assert translation.input == {
        "prompt": PAGE_EXAMPLE["prompt"],
        "image_url": IMAGE,
        "resolution": "720p",
        "duration": "10",
    }


def test_a_null_image_is_text_to_video():
    assert apiinone.to_job({**PAGE_EXAMPLE, "image": None}).model == "pixverse"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("thinking", ["enabled", "disabled"])
def test_a_thinking_mode_v56_lacks_is_refused_naming_the_field(thinking):
    details = refusal({**PAGE_EXAMPLE, "thinking_type": thinking})
    assert set(details) == {"thinking_type"} and "cannot be honoured" in details["thinking_type"]


@pytest.mark.parametrize("thinking", ["deep", 1, None])
def test_an_undocumented_thinking_value_is_refused(thinking):
    assert set(refusal({**PAGE_EXAMPLE, "thinking_type": thinking})) == {"thinking_type"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"generate_audio_switch": True}, "generate_audio_switch"),
        ({"generate_audio_switch": "yes"}, "generate_audio_switch"),
        ({"seed": 42}, "seed"),
        ({"resolution": "360p"}, "resolution"),
        ({"resolution": "540p"}, "resolution"),
        ({"duration": 8}, "duration"),
        ({"duration": 5.5}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"resolution_ratio": "21:9"}, "resolution_ratio"),
        ({"image": IMAGE, "resolution_ratio": "16:9"}, "resolution_ratio"),
        ({"image": IMAGE, "resolution": "2160p"}, "resolution"),
        ({"image": IMAGE, "duration": 7}, "duration"),
        ({"image": "not a url"}, "image"),
        ({"image_url": IMAGE}, "image_url"),
        ({"style": "anime"}, "style"),
        ({"model": "kling-3"}, "model"),
        ({"model": "pixverse-v6"}, "model"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": None}, "prompt"),
    ],
)
def test_what_pixazo_cannot_honour_is_refused_naming_the_field(change, field):
    details = refusal({**PAGE_EXAMPLE, **change})
    assert field in details, details


def test_missing_model_and_prompt_are_named():
    assert "model" in refusal({"prompt": "x"})
    assert "prompt" in refusal({"model": "pixverse-5-6"})


def test_a_body_that_is_not_an_object_is_400():
    with pytest.raises(ApiError) as caught:
        apiinone.to_job(["model"])
    assert caught.value.status == 400


# --- answers -------------------------------------------------------------------------------------


def test_task_words_for_every_job_status():
    assert apiinone.STATUS_WORDS == {
        "queued": "pending",
        "submitted": "pending",
        "processing": "processing",
        "completed": "completed",
        "failed": "failed",
        "canceled": "canceled",
    }


# --- routes --------------------------------------------------------------------------------------


@pytest.fixture
def http(app):
    return app.test_client()


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def test_post_makes_an_ordinary_queued_job(http, client_factory, svc, sent_tasks):
    _, key = client_factory("apiinone")
    answer = http.post("/api/v1/videos/generations", json=PAGE_EXAMPLE, headers=auth(key))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert body == {
        "task_id": body["task_id"],
        "id": body["task_id"],
        "status": "pending",
        "model": "pixverse-5-6",
    }
    job = http.get(f"/v1/jobs/{body['task_id']}", headers=auth(key)).get_json()
    assert job["model"] == "pixverse" and job["status"] == "queued"
    assert job["input"]["aspect_ratio"] == "16:9"
    assert answer.headers["Location"] == f"/v1/jobs/{body['task_id']}"
    assert len(sent_tasks) == 1 and svc.redis.zcard(keys.ALL_JOBS) == 1


def test_refusals_are_our_error_shape_and_store_nothing(http, client_factory, svc, sent_tasks):
    _, key = client_factory("apiinone")
    answer = http.post(
        "/api/v1/videos/generations",
        json={**PAGE_EXAMPLE, "thinking_type": "enabled"},
        headers=auth(key),
    )
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and "thinking_type" in error["details"]
    not_json = http.post("/api/v1/videos/generations", data="nope", headers=auth(key))
    assert not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "bad_request"
    assert sent_tasks == [] and svc.redis.zcard(keys.ALL_JOBS) == 0


def test_bearer_key_is_required(http):
    answer = http.post("/api/v1/videos/generations", json=PAGE_EXAMPLE)
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "unauthorized"
    assert http.get("/api/v1/tasks/job_x").status_code == 401


def test_idempotency_key_replays_the_same_task(http, client_factory, sent_tasks):
    _, key = client_factory("apiinone")
    headers = {**auth(key), "Idempotency-Key": "order-1"}
    first = http.post("/api/v1/videos/generations", json=PAGE_EXAMPLE, headers=headers)
    again = http.post("/api/v1/videos/generations", json=PAGE_EXAMPLE, headers=headers)
    assert first.get_json()["task_id"] == again.get_json()["task_id"]
    conflict = http.post(
        "/api/v1/videos/generations", json={**PAGE_EXAMPLE, "duration": 10}, headers=headers
    )
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "idempotency_conflict"
    assert len(sent_tasks) == 1


def test_task_route_answers_status_and_result(http, client_factory, job_factory):
    client, key = client_factory("apiinone")
    media = "https://cdn.example.com/v.mp4"
    done = job_factory(JobState.COMPLETED, client=client, model="pixverse", media_url=media)
    body = http.get(f"/api/v1/tasks/{done}", headers=auth(key)).get_json()
    assert body["task_id"] == done and body["status"] == "completed"
    assert body["model"] == "pixverse-5-6"
    assert body["result"]["url"] == media and body["result"]["urls"] == [media]
    assert body["error"] is None and body["completed_at"]
    queued = job_factory(JobState.QUEUED, client=client, model="pixverse")
    body = http.get(f"/api/v1/tasks/{queued}", headers=auth(key)).get_json()
    assert (body["status"], body["result"], body["error"]) == ("pending", None, None)
    failed = job_factory(JobState.FAILED, client=client, error_code="upstream_failed")
    body = http.get(f"/api/v1/tasks/{failed}", headers=auth(key)).get_json()
    assert body["status"] == "failed" and body["error"]["code"] == "upstream_failed"


def test_another_clients_task_is_the_same_404(http, client_factory, job_factory):
    other, _ = client_factory("other")
    _, key = client_factory("apiinone")
    foreign = job_factory(JobState.QUEUED, client=other)
    missing = http.get("/api/v1/tasks/job_doesnotexist", headers=auth(key))
    theirs = http.get(f"/api/v1/tasks/{foreign}", headers=auth(key))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json() == missing.get_json()
    assert theirs.get_json()["error"]["code"] == "not_found"
