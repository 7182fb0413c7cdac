"""The shared ``POST /v1/videos/generations`` translation (aigateway.sh, EmpirioLabs and the
older gateway-style bodies): each parameter form, each refusal, and the route over ordinary jobs."""

from __future__ import annotations

import pytest

from orchestrator.core import catalog, enqueue, keys
from orchestrator.core.errors import ApiError
from orchestrator.intake.dialects import aigateway, empiriolabs, videos

IMAGE = "https://images.example.com/lake.png"
# aigateway.sh's page, verbatim: the Quickstart body and the API schema's request body.
AIGATEWAY_QUICKSTART = {"model": "pixverse/v5.6", "prompt": "a drone shot of a mountain lake"}
AIGATEWAY_SCHEMA = {
    "model": "pixverse/v5.6",
    "prompt": "A drone shot of a mountain lake at golden hour",
    "duration": 5,
    "aspect_ratio": "16:9",
}


def translated(body: dict) -> videos.Translation:
    return videos.translate(body)


def refusal(body: dict) -> dict:
    with pytest.raises(ApiError) as caught:
        videos.translate(body)
    assert caught.value.status == 422 and caught.value.code == "validation_error"
    return caught.value.details


# --- aigateway.sh ---------------------------------------------------------------------------


def test_aigateway_quickstart_body_fills_pixazo_v56_required_fields():
    result = translated(AIGATEWAY_QUICKSTART)
    assert result.body == {
        "model": catalog.V56_T2V,
        "input": {
            "prompt": "a drone shot of a mountain lake",
            **videos.COMMON_DEFAULTS[catalog.V56_T2V],
        },
    }
    assert result.warnings == []  # aigateway.sh documents no default Pixazo cannot honour


def test_aigateway_schema_body_keeps_its_duration_and_aspect_ratio():
    result = translated(AIGATEWAY_SCHEMA)
    assert result.body["model"] == catalog.V56_T2V
    assert result.body["input"] == {
        "prompt": "A drone shot of a mountain lake at golden hour",
        "duration": 5,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }
    assert result.warnings == []


def test_aigateway_with_image_is_v56_image_to_video():
    result = translated({**AIGATEWAY_QUICKSTART, "image": IMAGE, "duration": 10})
    assert result.body["model"] == catalog.V56_I2V
    assert result.body["input"]["image_url"] == IMAGE
    assert result.body["input"]["duration"] == "10"  # Pixazo's v5.6 i2v takes a string


# --- parameter forms ------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["aspect_ratio", "resolution_ratio"])
def test_aspect_ratio_spellings(spelling):
    result = translated({"model": "pixverse/v5.6", "prompt": "x", spelling: "9:16"})
    assert result.body["input"]["aspect_ratio"] == "9:16"
    assert "resolution_ratio" not in result.body["input"]


@pytest.mark.parametrize("spelling", ["audio", "generate_audio", "generate_audio_switch"])
@pytest.mark.parametrize("value", [True, False])
def test_audio_spellings_on_v6(spelling, value):
    result = translated({"model": "pixverse-v6", "prompt": "x", spelling: value})
    assert result.body["input"]["generate_audio_switch"] is value
    assert set(result.body["input"]) & {"audio", "generate_audio"} == set()


@pytest.mark.parametrize("spelling", ["audio", "generate_audio", "generate_audio_switch"])
def test_audio_false_on_v56_is_accepted_and_not_sent(spelling):
    result = translated({"model": "pixverse/v5.6", "prompt": "x", spelling: False})
    assert "generate_audio_switch" not in result.body["input"]
    assert spelling not in result.body["input"]


@pytest.mark.parametrize("spelling", ["thinking", "thinking_type"])
@pytest.mark.parametrize("value", ["auto", "enabled", "disabled"])
def test_thinking_spellings_on_v6(spelling, value):
    result = translated({"model": "pixverse-v6", "prompt": "x", spelling: value})
    assert result.body["input"]["thinking_type"] == value


@pytest.mark.parametrize("spelling", ["thinking", "thinking_type"])
def test_thinking_auto_on_v56_lets_the_model_decide_and_is_not_sent(spelling):
    result = translated({"model": "pixverse-v5-6", "prompt": "x", spelling: "auto"})
    assert "thinking_type" not in result.body["input"] and spelling not in result.body["input"]


@pytest.mark.parametrize("spelling", ["image", "image_url"])
def test_image_spellings_select_image_to_video(spelling):
    result = translated({"model": "pixverse-v6", "prompt": "x", spelling: IMAGE})
    assert result.body["model"] == catalog.V6_I2V
    assert result.body["input"]["image_url"] == IMAGE


def test_null_image_is_no_image():
    result = translated({"model": "pixverse-v6", "prompt": "x", "image": None})
    assert result.body["model"] == catalog.V6_T2V and "image_url" not in result.body["input"]


def test_mode_t2v_and_i2v_pick_the_family_member():
    assert translated({"model": "pixverse-v6", "prompt": "x", "mode": "t2v"}).body["model"] == (
        catalog.V6_T2V
    )
    body = {"model": "pixverse-v6", "prompt": "x", "mode": "i2v", "image": IMAGE}
    result = translated(body)
    assert result.body["model"] == catalog.V6_I2V and "mode" not in result.body["input"]


def test_image_end_null_and_style_none_are_nothing():
    body = {"model": "pixverse-v6", "prompt": "x", "image_end": None, "style": "none"}
    assert set(translated(body).body["input"]) == {"prompt"}


def test_style_none_on_v56_is_accepted():
    body = {"model": "pixverse-v5-6", "prompt": "x", "style": "none"}
    assert "style" not in translated(body).body["input"]


@pytest.mark.parametrize(
    ("model", "given", "sent"),
    [
        ("pixverse-v5-6", "5s", 5),
        ("pixverse-v5-6", "10s", 10),
        ("pixverse-v5-6", 10, 10),
        ("pixverse-v6", "8s", 8),
        ("pixverse-v6", "15s", 15),
    ],
)
def test_duration_seconds_forms(model, given, sent):
    result = translated({"model": model, "prompt": "x", "duration": given})
    assert result.body["input"]["duration"] == sent


@pytest.mark.parametrize("given", ["5s", 5, "5"])
def test_duration_on_v56_image_to_video_is_a_string(given):
    body = {"model": "pixverse-v5-6", "prompt": "x", "image": IMAGE, "duration": given}
    assert translated(body).body["input"]["duration"] == "5"


def test_older_gateway_text_body():
    body = {
        "model": "pixverse-v6",
        "prompt": "x",
        "generate_audio": True,
        "generate_multi_clip": False,
        "resolution_ratio": "9:16",
        "duration": 8,
    }
    result = translated(body)
    assert result.body == {
        "model": catalog.V6_T2V,
        "input": {
            "prompt": "x",
            "generate_audio_switch": True,
            "generate_multi_clip_switch": False,
            "aspect_ratio": "9:16",
            "duration": 8,
        },
    }
    assert body["model"] == "pixverse-v6" and "generate_audio" in body  # left alone


@pytest.mark.parametrize(("given", "sent"), [(5, "5"), (10, "10"), (7, 7), ("5", "5")])
def test_v56_image_to_video_integer_durations(given, sent):
    # 7 is passed on as given so that the catalog names it (input.duration)
    body = {"model": "pixverse-5-6", "prompt": "x", "image": IMAGE, "duration": given}
    assert translated(body).body["input"]["duration"] == sent


def test_envelope_fields_stay_ours():
    body = {**AIGATEWAY_QUICKSTART, "metadata": {"order": 1}, "callback_url": None}
    result = translated(body)
    assert result.body["metadata"] == {"order": 1} and result.body["callback_url"] is None
    assert "metadata" not in result.body["input"]


def test_unknown_field_is_left_for_the_catalog_to_name():
    result = translated({"model": "pixverse-v6", "prompt": "x", "n": 1})
    assert result.body["input"]["n"] == 1  # parse_job_request refuses it as input.n


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["audio", "generate_audio", "generate_audio_switch"])
@pytest.mark.parametrize("model", ["pixverse-v5-6", "pixverse/v5.6", "pixverse-5-6"])
def test_audio_true_on_v56_is_refused_naming_the_field(spelling, model):
    details = refusal({"model": model, "prompt": "x", spelling: True})
    assert set(details) == {spelling} and "no audio" in details[spelling]


@pytest.mark.parametrize("given", ["8s", "3s", "15s"])
def test_v56_image_to_video_duration_not_offered(given):
    details = refusal({"model": "pixverse-v5-6", "prompt": "x", "image": IMAGE, "duration": given})
    assert set(details) == {"duration"} and "5, 10 s" in details["duration"]


def test_duration_8s_on_v56_is_refused_with_what_is_offered():
    details = refusal({"model": "pixverse-v5-6", "prompt": "x", "duration": "8s"})
    assert set(details) == {"duration"}
    assert "'8s' is not offered" in details["duration"] and "3, 5, 7, 10 s" in details["duration"]


def test_duration_beyond_fifteen_seconds_on_v6():
    assert set(refusal({"model": "pixverse-v6", "prompt": "x", "duration": "20s"})) == {"duration"}


@pytest.mark.parametrize("spelling", ["thinking", "thinking_type"])
@pytest.mark.parametrize("value", ["enabled", "disabled", "deep"])
def test_thinking_other_than_auto_on_v56_is_refused(spelling, value):
    details = refusal({"model": "pixverse-v5-6", "prompt": "x", spelling: value})
    assert set(details) == {spelling} and "only 'auto'" in details[spelling]


def test_thinking_on_c1_image_to_video_only_auto():
    body = {"model": "pixverse-c1", "prompt": "x", "image": IMAGE}
    assert "thinking_type" not in translated({**body, "thinking": "auto"}).body["input"]
    assert set(refusal({**body, "thinking": "enabled"})) == {"thinking"}


def test_image_end_is_refused_pixazo_has_no_end_frame():
    body = {"model": "pixverse-v5-6", "prompt": "x", "image": IMAGE, "image_end": IMAGE}
    details = refusal(body)
    assert set(details) == {"image_end"} and "no end frame" in details["image_end"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"style": "anime"}, "style"),
        ({"seed": 7}, "seed"),
        ({"generate_multi_clip": True}, "generate_multi_clip"),
    ],
)
def test_gateway_fields_v56_does_not_take_are_refused_with_a_reason(extra, field):
    details = refusal({"model": "pixverse-v5-6", "prompt": "x", **extra})
    assert set(details) == {field} and f"takes no {field}" in details[field]


def test_aspect_ratio_on_v56_image_to_video_is_refused():
    body = {"model": "pixverse/v5.6", "prompt": "x", "image": IMAGE, "aspect_ratio": "9:16"}
    assert set(refusal(body)) == {"aspect_ratio"}


@pytest.mark.parametrize(
    ("extra", "fields"),
    [
        ({"mode": "i2v"}, {"image"}),
        ({"mode": "t2v", "image": IMAGE}, {"mode"}),
        ({"mode": "v2v"}, {"mode"}),
        ({"image": IMAGE, "image_url": IMAGE}, {"image", "image_url"}),
        ({"audio": True, "generate_audio": True}, {"audio", "generate_audio"}),
        ({"aspect_ratio": "1:1", "resolution_ratio": "1:1"}, {"aspect_ratio", "resolution_ratio"}),
        ({"thinking": "auto", "thinking_type": "auto"}, {"thinking", "thinking_type"}),
    ],
)
def test_contradictions_are_refused(extra, fields):
    assert set(refusal({"model": "pixverse-v6", "prompt": "x", **extra})) == fields


def test_mode_against_an_explicit_model_id():
    body = {"model": catalog.V6_T2V, "prompt": "x", "mode": "i2v", "image": IMAGE}
    assert set(refusal(body)) == {"mode"}


def test_every_refusal_of_one_request_is_named_at_once():
    body = {
        "model": "pixverse-v5-6",
        "prompt": "x",
        "audio": True,
        "duration": "8s",
        "thinking": "enabled",
        "image_end": IMAGE,
    }
    assert set(refusal(body)) == {"audio", "duration", "thinking", "image_end"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x"}, "model"),
        ({"model": 5, "prompt": "x"}, "model"),
        ({"model": "pixverse-v7", "prompt": "x"}, "model"),
        ({"model": "", "prompt": "x"}, "model"),
        ({"model": None, "prompt": "x"}, "model"),
    ],
)
def test_model_refusals(body, field):
    assert set(refusal(body)) == {field}


def test_not_an_object_is_400():
    with pytest.raises(ApiError) as caught:
        videos.translate(["pixverse-v6"])
    assert caught.value.status == 400


def test_every_spelling_names_one_pixazo_field():
    assert "resolution_ratio" in videos.SYNONYMS["aspect_ratio"]
    spellings = [s for group in videos.SYNONYMS.values() for s in group]
    assert len(spellings) == len(set(spellings))


# --- the dialects' model names --------------------------------------------------------------


@pytest.mark.parametrize("dialect", [aigateway, empiriolabs])
def test_each_dialect_model_name_resolves_as_listed(dialect):
    for alias, (t2v, i2v) in dialect.MODEL_NAMES.items():
        assert catalog.resolve_alias(alias, has_image=False) == t2v
        assert catalog.resolve_alias(alias, has_image=True) == i2v


def test_describe_lists_both_dialects_with_their_aliases():
    listed = {d["name"]: d for d in videos.describe()}
    assert set(listed) == {"aigateway.sh", "EmpirioLabs"}
    assert listed["aigateway.sh"]["aliases"] == [
        {"alias": "pixverse/v5.6", "text_to_video": "pixverse", "image_to_video": "pixverse-i2v"}
    ]
    assert listed["EmpirioLabs"]["aliases"][0]["alias"] == "pixverse-v5-6"


# --- the route over ordinary jobs -----------------------------------------------------------


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def key(client_factory) -> str:
    return client_factory("acme")[1]


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def test_route_answers_in_aigateway_words_and_stores_an_ordinary_job(http, svc, sent_tasks, key):
    answer = http.post(videos.ROUTE, json=AIGATEWAY_SCHEMA, headers=auth(key))
    assert answer.status_code == 202, answer.get_data(as_text=True)
    job = answer.get_json()
    assert job["id"].startswith("job_") and job["job_id"] == job["id"]
    assert job["status"] == "queued" and isinstance(job["created"], int)
    assert job["result"] is None and job["warnings"] == []
    assert sent_tasks == [(enqueue.SUBMIT, (job["id"],))]
    listed = http.get("/v1/jobs", headers=auth(key)).get_json()["data"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert svc.redis.zscore(keys.ALL_JOBS, job["id"]) is not None


def test_route_stores_empiriolabs_warnings_and_renders_them_on_every_read(http, key):
    body = {"model": "pixverse-v5-6", "prompt": "Describe what you want."}
    job = http.post(videos.ROUTE, json=body, headers=auth(key)).get_json()
    assert [w["field"] for w in job["warnings"]] == ["audio"]
    again = http.get(f"/v1/jobs/{job['job_id']}", headers=auth(key)).get_json()
    assert again["warnings"] == job["warnings"]
    assert again["input"]["resolution"] == "1080p"


def test_route_refusal_keeps_our_error_shape_and_stores_nothing(http, svc, sent_tasks, key):
    body = {"model": "pixverse-v5-6", "prompt": "x", "audio": True}
    answer = http.post(videos.ROUTE, json=body, headers=auth(key))
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    assert error["code"] == "validation_error" and set(error["details"]) == {"audio"}
    assert sent_tasks == [] and svc.redis.zcard(keys.ALL_JOBS) == 0


def test_route_idempotency_replays_the_same_job_with_its_warnings(http, sent_tasks, key):
    headers = {**auth(key), "Idempotency-Key": "e1"}
    body = {"model": "pixverse-v5-6", "prompt": "x"}
    first = http.post(videos.ROUTE, json=body, headers=headers)
    again = http.post(videos.ROUTE, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"] and len(sent_tasks) == 1
    assert again.get_json()["warnings"] == first.get_json()["warnings"]


def test_models_lists_the_dialects(http, key):
    answer = http.get("/v1/models", headers=auth(key)).get_json()
    names = {d["name"] for d in answer["dialects"]}
    assert {"aigateway.sh", "EmpirioLabs"} <= names
