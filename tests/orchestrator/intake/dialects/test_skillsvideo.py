"""The skills.video dialect: each parameter form it documents, each refusal, and its routes
(``POST /api/v1/generation/pixverse/v6``, ``GET /api/v1/generation/{id}``) over ordinary jobs."""

from __future__ import annotations

import pytest

from orchestrator.core import keys
from orchestrator.core.errors import ApiError
from orchestrator.intake.dialects import skillsvideo
from orchestrator.jobs.state import JobState

IMAGE = "https://images.example.com/cat.png"
ROUTE = "/api/v1/generation/pixverse/v6"
V6_T2V_DEFAULTS = {
    "resolution": "720p",
    "duration": 5,
    "aspect_ratio": "16:9",
    "negative_prompt": "",
    "generate_audio_switch": False,
    "generate_multi_clip_switch": False,
    "thinking_type": "auto",
}


def refusal(body) -> dict:
    with pytest.raises(ApiError) as caught:
        skillsvideo.to_job(body)
    assert caught.value.status == 422 and caught.value.code == "validation_error"
    return caught.value.details


# --- translation ---------------------------------------------------------------------------------


def test_without_image_url_it_is_v6_text_to_video_with_the_page_defaults():
    translation = skillsvideo.to_job({"prompt": "a cat walking through neon rain"})
    assert translation.model == "pixverse-v6-text-to-video"
    assert translation.input == {"prompt": "a cat walking through neon rain", **V6_T2V_DEFAULTS}
    assert translation.warnings == ()


def test_image_url_selects_image_to_video_and_the_left_out_aspect_ratio_is_a_warning():
    translation = skillsvideo.to_job({"prompt": "the cat waves", "image_url": IMAGE})
    assert translation.model == "pixverse-v6-image-to-video"
    assert translation.input == {
        "prompt": "the cat waves",
        "image_url": IMAGE,
        "resolution": "720p",
        "duration": 5,
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
        "thinking_type": "auto",
    }
    assert [w["field"] for w in translation.warnings] == ["aspect_ratio"]


def test_the_normalised_input_of_the_page_example_is_accepted_as_a_request():
    example_input = {
        "prompt": "a cat walking through neon rain",
        "duration": 5,
        "aspect_ratio": "16:9",
        "n": 1,
    }
    translation = skillsvideo.to_job(example_input)
    assert translation.input == {"prompt": example_input["prompt"], **V6_T2V_DEFAULTS}
    assert skillsvideo.dialect_input(translation.input)["n"] == 1


def test_a_null_image_url_is_text_to_video():
    assert skillsvideo.to_job({"prompt": "x", "image_url": None}).model.endswith("text-to-video")


def test_every_documented_parameter_is_carried_in_pixazo_spelling():
    body = {
        "prompt": "a cat",
        "feature": "text-image",
        "resolution": "1080p",
        "duration": 15,
        "negative_prompt": "blur",
        "style": "anime",
        "seed": 7,
        "generate_audio": True,
        "aspect_ratio": "21:9",
        "generate_multi_clip": True,
        "thinking_type": "enabled",
        "callback_url": "https://hooks.example.com/x",
        "metadata": {"k": "v"},
    }
    translation = skillsvideo.to_job(body)
    assert translation.input == {
        "prompt": "a cat",
        "resolution": "1080p",
        "duration": 15,
        "negative_prompt": "blur",
        "style": "anime",
        "seed": 7,
        "generate_audio_switch": True,
        "aspect_ratio": "21:9",
        "generate_multi_clip_switch": True,
        "thinking_type": "enabled",
    }
    assert translation.envelope == {
        "callback_url": "https://hooks.example.com/x",
        "metadata": {"k": "v"},
    }


def test_image_to_video_takes_480p_and_a_whole_float_duration():
    translation = skillsvideo.to_job(
        {"prompt": "x", "image_url": IMAGE, "resolution": "480p", "duration": 1.0}
    )
    assert translation.input["resolution"] == "480p" and translation.input["duration"] == 1


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": 0}, "duration"),
        ({"duration": 16}, "duration"),
        ({"duration": 2.5}, "duration"),
        ({"duration": "5"}, "duration"),
        ({"resolution": "4k"}, "resolution"),
        ({"aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"style": "watercolor"}, "style"),
        ({"thinking_type": "deep"}, "thinking_type"),
        ({"generate_audio": "yes"}, "generate_audio"),
        ({"generate_multi_clip": 1}, "generate_multi_clip"),
        ({"seed": "7"}, "seed"),
        ({"feature": "first-last-frame"}, "feature"),
        ({"feature": "video-extension"}, "feature"),
        ({"model": "pixverse-v6"}, "model"),
        ({"n": 2}, "n"),
        ({"n": True}, "n"),
        ({"n": "1"}, "n"),
        ({"image_url": "ftp://x.example.com/a.png"}, "image_url"),
        ({"image_url": IMAGE, "aspect_ratio": "16:9"}, "aspect_ratio"),
        ({"image_url": IMAGE, "resolution": "540p"}, "resolution"),
        ({"prompt": "  "}, "prompt"),
    ],
)
def test_what_pixazo_cannot_honour_is_refused_naming_the_field(change, field):
    details = refusal({"prompt": "a cat", **change})
    assert field in details, details


def test_prompt_is_required():
    assert "prompt" in refusal({"image_url": IMAGE})


def test_a_body_that_is_not_an_object_is_400():
    with pytest.raises(ApiError) as caught:
        skillsvideo.to_job("prompt")
    assert caught.value.status == 400


# --- answers -------------------------------------------------------------------------------------


def test_status_words_for_every_job_status():
    assert skillsvideo.STATUS_WORDS == {
        "queued": "IN_QUEUE",
        "submitted": "IN_QUEUE",
        "processing": "IN_PROGRESS",
        "completed": "COMPLETED",
        "failed": "FAILED",
        "canceled": "CANCELED",
    }


def test_input_is_answered_in_the_dialect_spelling_with_n():
    stored = {"prompt": "x", "generate_audio_switch": True, "generate_multi_clip_switch": False}
    assert skillsvideo.dialect_input(stored) == {
        "prompt": "x",
        "generate_audio": True,
        "generate_multi_clip": False,
        "n": 1,
    }


# --- routes --------------------------------------------------------------------------------------


@pytest.fixture
def http(app):
    return app.test_client()


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def test_post_answers_the_page_shape_over_an_ordinary_job(http, client_factory, svc, sent_tasks):
    _, key = client_factory("skills")
    answer = http.post(ROUTE, json={"prompt": "a cat walking through neon rain"}, headers=auth(key))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert {"id", "status", "input", "usage"} <= set(body)
    assert body["status"] == "IN_QUEUE"
    assert body["input"]["prompt"] == "a cat walking through neon rain"
    assert body["input"]["duration"] == 5 and body["input"]["aspect_ratio"] == "16:9"
    assert body["input"]["n"] == 1 and body["input"]["generate_audio"] is False
    assert {"total", "subscription", "permanent"} <= set(body["usage"])
    assert "code" not in body and "warnings" not in body
    job = http.get(f"/v1/jobs/{body['id']}", headers=auth(key)).get_json()
    assert job["model"] == "pixverse-v6-text-to-video" and job["status"] == "queued"
    assert len(sent_tasks) == 1 and svc.redis.zcard(keys.ALL_JOBS) == 1


def test_image_to_video_answer_and_job_carry_the_warning(http, client_factory):
    _, key = client_factory("skills")
    answer = http.post(
        ROUTE, json={"prompt": "the cat waves", "image_url": IMAGE}, headers=auth(key)
    )
    body = answer.get_json()
    assert answer.status_code == 200 and body["input"]["image_url"] == IMAGE
    assert [w["field"] for w in body["warnings"]] == ["aspect_ratio"]
    job = http.get(f"/v1/jobs/{body['id']}", headers=auth(key)).get_json()
    assert job["model"] == "pixverse-v6-image-to-video"
    assert [w["field"] for w in job["warnings"]] == ["aspect_ratio"]


def test_refusals_are_our_error_shape_and_store_nothing(http, client_factory, svc, sent_tasks):
    _, key = client_factory("skills")
    answer = http.post(ROUTE, json={"prompt": "x", "duration": 20}, headers=auth(key))
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and "duration" in error["details"]
    assert http.post(ROUTE, data="{", headers=auth(key)).status_code == 400
    assert http.post(ROUTE, json={"prompt": "x"}).status_code == 401
    assert sent_tasks == [] and svc.redis.zcard(keys.ALL_JOBS) == 0


def test_idempotency_key_replays_the_same_generation(http, client_factory, sent_tasks):
    _, key = client_factory("skills")
    headers = {**auth(key), "Idempotency-Key": "gen-1"}
    first = http.post(ROUTE, json={"prompt": "x"}, headers=headers).get_json()
    again = http.post(ROUTE, json={"prompt": "x"}, headers=headers).get_json()
    assert first["id"] == again["id"] and len(sent_tasks) == 1
    conflict = http.post(ROUTE, json={"prompt": "y"}, headers=headers)
    assert conflict.status_code == 409


def test_get_generation_answers_each_status(http, client_factory, job_factory):
    client, key = client_factory("skills")
    media = "https://cdn.example.com/v.mp4"
    model = "pixverse-v6-text-to-video"
    done = job_factory(JobState.COMPLETED, client=client, model=model, media_url=media)
    body = http.get(f"/api/v1/generation/{done}", headers=auth(key)).get_json()
    assert body["status"] == "COMPLETED" and body["output"]["url"] == media
    assert "code" not in body
    running = job_factory(JobState.PROCESSING, client=client, model=model)
    body = http.get(f"/api/v1/generation/{running}", headers=auth(key)).get_json()
    assert body["status"] == "IN_PROGRESS" and body["output"] is None
    failed = job_factory(JobState.FAILED, client=client, error_code="upstream_failed")
    body = http.get(f"/api/v1/generation/{failed}", headers=auth(key)).get_json()
    assert body["status"] == "FAILED" and body["code"] == "upstream_failed" and body["message"]
    canceled = job_factory(JobState.CANCELED, client=client)
    body = http.get(f"/api/v1/generation/{canceled}", headers=auth(key)).get_json()
    assert body["status"] == "CANCELED"


def test_another_clients_generation_is_the_same_404(http, client_factory, job_factory):
    other, _ = client_factory("other")
    _, key = client_factory("skills")
    foreign = job_factory(JobState.QUEUED, client=other)
    missing = http.get("/api/v1/generation/job_doesnotexist", headers=auth(key))
    theirs = http.get(f"/api/v1/generation/{foreign}", headers=auth(key))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json() == missing.get_json()


def test_openapi_documents_the_dialect_routes(http):
    spec = http.get("/openapi.json").get_json()
    from openapi_spec_validator import validate

    validate(spec)
    assert set(spec["paths"]) >= {
        "/api/v1/videos/generations",
        "/api/v1/tasks/{task_id}",
        "/api/v1/generation/pixverse/v6",
        "/api/v1/generation/{generation_id}",
    }
