import json

import marshmallow
import pytest

from orchestrator.core.catalog import (
    MODELS,
    describe_catalog,
    estimate_cost_usd,
    get_model,
    resolve_alias,
    validate_input,
)

IMAGE = "https://cdn.example.com/images/cat.png"
V6_T2V = "pixverse-v6-text-to-video"
V6_I2V = "pixverse-v6-image-to-video"
C1_T2V = "pixverse-c1-text-to-video"
C1_I2V = "pixverse-c1-image-to-video"
V56_T2V = "pixverse"
V56_I2V = "pixverse-i2v"

MINIMAL = {
    V6_T2V: {"prompt": "a cat"},
    V6_I2V: {"prompt": "a cat", "image_url": IMAGE},
    C1_T2V: {"prompt": "a cat"},
    C1_I2V: {"prompt": "a cat", "image_url": IMAGE},
    V56_T2V: {"prompt": "a cat", "aspect_ratio": "16:9", "resolution": "720p", "duration": 5},
    V56_I2V: {"prompt": "a cat", "resolution": "720p", "duration": "5", "image_url": IMAGE},
}
MINIMAL_NORMALIZED = {
    V6_T2V: {
        "prompt": "a cat",
        "negative_prompt": "",
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
    },
    V6_I2V: {
        "prompt": "a cat",
        "image_url": IMAGE,
        "resolution": "720p",
        "duration": 5,
        "generate_audio_switch": False,
        "generate_multi_clip_switch": False,
        "thinking_type": "auto",
    },
    C1_I2V: {
        "prompt": "a cat",
        "image_url": IMAGE,
        "resolution": "720p",
        "duration": 5,
        "generate_audio_switch": False,
    },
    V56_T2V: MINIMAL[V56_T2V],
    V56_I2V: MINIMAL[V56_I2V],
}
MINIMAL_NORMALIZED[C1_T2V] = MINIMAL_NORMALIZED[V6_T2V]
T2V_FULL = {
    "prompt": "a cat by a window",
    "negative_prompt": "blurry",
    "aspect_ratio": "21:9",
    "resolution": "1080p",
    "duration": 15,
    "style": "3d_animation",
    "seed": 42,
    "generate_audio_switch": True,
    "generate_multi_clip_switch": True,
    "thinking_type": "disabled",
}
FULL = {
    V6_T2V: T2V_FULL,
    C1_T2V: T2V_FULL,
    V6_I2V: {
        "prompt": "snow falls",
        "image_url": IMAGE,
        "resolution": "480p",
        "duration": 1,
        "negative_prompt": "grainy",
        "style": "clay",
        "seed": 0,
        "generate_audio_switch": True,
        "generate_multi_clip_switch": False,
        "thinking_type": "enabled",
    },
    C1_I2V: {
        "prompt": "a warrior walks",
        "image_url": "http://cdn.example.com/a.avif",
        "resolution": "360p",
        "duration": 12,
        "seed": 7,
        "generate_audio_switch": True,
    },
    V56_T2V: {
        "prompt": "sunset",
        "aspect_ratio": "3:4",
        "resolution": "2160p",
        "duration": 10,
        "negative_prompt": "noise",
    },
    V56_I2V: {
        "prompt": "dragon",
        "resolution": "1080p",
        "duration": "10",
        "negative_prompt": "noise",
        "image_url": IMAGE,
    },
}


def errors_of(model_id, data):
    with pytest.raises(marshmallow.ValidationError) as caught:
        validate_input(model_id, data)
    return caught.value.messages


def test_the_six_models_and_their_submit_paths():
    assert {model_id: spec.submit_path for model_id, spec in MODELS.items()} == {
        V6_T2V: "/pixverse-v6-text-to-video/v1/pixverse-v6-text-to-video-request",
        V6_I2V: "/pixverse-v6-image-to-video/v1/pixverse-v6-image-to-video-request",
        C1_T2V: "/pixverse-c1-text-to-video/v1/pixverse-c1-text-to-video-request",
        C1_I2V: "/pixverse-c1-image-to-video/v1/pixverse-c1-image-to-video-request",
        V56_T2V: "/pixverse/v1/pixverse-request",
        V56_I2V: "/pixverse-i2v/v1/pixverse-i2v-request",
    }
    image_models = {m.id for m in MODELS.values() if m.kind == "image-to-video"}
    assert image_models == {V6_I2V, C1_I2V, V56_I2V}
    assert get_model(V6_T2V).title == "PixVerse V6 text-to-video"
    assert get_model("pixverse-v7") is None
    assert all(issubclass(spec.schema, marshmallow.Schema) for spec in MODELS.values())


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_minimal_input_gets_the_documented_defaults(model_id):
    assert validate_input(model_id, dict(MINIMAL[model_id])) == MINIMAL_NORMALIZED[model_id]


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_full_input_is_kept_as_given(model_id):
    assert validate_input(model_id, dict(FULL[model_id])) == FULL[model_id]


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_required_fields_are_required(model_id):
    required = {p.name for p in MODELS[model_id].parameters if p.required}
    assert required == set(MINIMAL[model_id])
    for name in required:
        data = {k: v for k, v in MINIMAL[model_id].items() if k != name}
        assert errors_of(model_id, data) == {name: ["Missing data for required field."]}


def test_v56_image_to_video_duration_is_a_string():
    assert validate_input(V56_I2V, {**MINIMAL[V56_I2V], "duration": "10"})["duration"] == "10"
    assert "duration" in errors_of(V56_I2V, {**MINIMAL[V56_I2V], "duration": 5})
    assert "duration" in errors_of(V56_I2V, {**MINIMAL[V56_I2V], "duration": "7"})
    assert "resolution" in errors_of(V56_I2V, {**MINIMAL[V56_I2V], "resolution": "2160p"})


@pytest.mark.parametrize("duration", [3, 5, 7, 10])
def test_v56_text_to_video_takes_four_integer_durations(duration):
    normalized = validate_input(V56_T2V, {**MINIMAL[V56_T2V], "duration": duration})
    assert normalized["duration"] == duration


@pytest.mark.parametrize("duration", ["5", 4, 15, 5.0])
def test_v56_text_to_video_refuses_other_durations(duration):
    assert "duration" in errors_of(V56_T2V, {**MINIMAL[V56_T2V], "duration": duration})


def test_v56_text_to_video_enums():
    assert validate_input(V56_T2V, {**MINIMAL[V56_T2V], "resolution": "2160p"})
    assert "resolution" in errors_of(V56_T2V, {**MINIMAL[V56_T2V], "resolution": "540p"})
    assert "aspect_ratio" in errors_of(V56_T2V, {**MINIMAL[V56_T2V], "aspect_ratio": "21:9"})
    assert "style" in errors_of(V56_T2V, {**MINIMAL[V56_T2V], "style": "anime"})


def test_v6_image_to_video_has_480p_not_540p_and_no_aspect_ratio():
    assert validate_input(V6_I2V, {**MINIMAL[V6_I2V], "resolution": "480p"})["resolution"] == "480p"
    assert "resolution" in errors_of(V6_I2V, {**MINIMAL[V6_I2V], "resolution": "540p"})
    assert errors_of(V6_I2V, {**MINIMAL[V6_I2V], "aspect_ratio": "16:9"}) == {
        "aspect_ratio": ["Unknown field."]
    }
    assert "resolution" in errors_of(V6_T2V, {"prompt": "x", "resolution": "480p"})


def test_thinking_type_defaults_only_for_v6_image_to_video():
    assert validate_input(V6_I2V, MINIMAL[V6_I2V])["thinking_type"] == "auto"
    assert "thinking_type" not in validate_input(V6_T2V, MINIMAL[V6_T2V])
    assert "thinking_type" not in validate_input(C1_T2V, MINIMAL[C1_T2V])
    assert "thinking_type" in errors_of(V6_T2V, {"prompt": "x", "thinking_type": "on"})


@pytest.mark.parametrize(
    "field",
    ["style", "aspect_ratio", "negative_prompt", "generate_multi_clip_switch", "thinking_type"],
)
def test_c1_image_to_video_has_no(field):
    value = {"generate_multi_clip_switch": False}.get(field, "auto")
    assert errors_of(C1_I2V, {**MINIMAL[C1_I2V], field: value}) == {field: ["Unknown field."]}


@pytest.mark.parametrize("duration", [0, 16, -1])
def test_duration_range_1_to_15(duration):
    assert "duration" in errors_of(V6_T2V, {"prompt": "x", "duration": duration})


@pytest.mark.parametrize("value", ["5", 5.0, 5.5, True, None, [5]])
def test_integers_must_be_json_integers(value):
    assert "duration" in errors_of(V6_T2V, {"prompt": "x", "duration": value})
    assert "seed" in errors_of(C1_I2V, {**MINIMAL[C1_I2V], "seed": value})


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, "false", None])
def test_booleans_must_be_json_booleans(value):
    assert "generate_audio_switch" in errors_of(
        V6_T2V, {"prompt": "x", "generate_audio_switch": value}
    )


@pytest.mark.parametrize("prompt", ["", "   ", 42, None, ["a"]])
def test_prompt_must_be_a_non_empty_string(prompt):
    assert "prompt" in errors_of(V6_T2V, {"prompt": prompt})


@pytest.mark.parametrize(
    "url", ["ftp://cdn.example.com/a.png", "cat.png", "https://", "javascript:alert(1)", 7]
)
def test_image_url_must_be_http_or_https(url):
    assert "image_url" in errors_of(V6_I2V, {"prompt": "x", "image_url": url})


def test_unknown_fields_are_rejected():
    assert errors_of(V6_T2V, {"prompt": "x", "fps": 24}) == {"fps": ["Unknown field."]}


@pytest.mark.parametrize("data", [None, [], "prompt", 5])
def test_non_object_input_is_a_schema_error(data):
    assert set(errors_of(V6_T2V, data)) == {"_schema"}


def test_unknown_model_is_a_model_error():
    assert set(errors_of("pixverse-v9", {"prompt": "x"})) == {"model"}


def test_validation_does_not_mutate_the_input():
    data = {"prompt": "x"}
    validate_input(V6_T2V, data)
    assert data == {"prompt": "x"}


@pytest.mark.parametrize(
    ("name", "text_model", "image_model"),
    [
        ("pixverse-v6", V6_T2V, V6_I2V),
        ("pixverse/v6", V6_T2V, V6_I2V),
        ("PixVerse-V6", V6_T2V, V6_I2V),
        ("pixverse-c1", C1_T2V, C1_I2V),
        ("pixverse/c1", C1_T2V, C1_I2V),
        ("pixverse-5-6", V56_T2V, V56_I2V),
        ("pixverse/v5.6", V56_T2V, V56_I2V),
        ("pixverse-v5-6", V56_T2V, V56_I2V),
        ("pixverse-v5.6", V56_T2V, V56_I2V),
        ("pixverse-5.6", V56_T2V, V56_I2V),
        ("PIXVERSE/V5.6", V56_T2V, V56_I2V),
    ],
)
def test_aliases(name, text_model, image_model):
    assert resolve_alias(name, has_image=False) == text_model
    assert resolve_alias(name, has_image=True) == image_model


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_model_ids_resolve_to_themselves(model_id):
    assert resolve_alias(model_id, has_image=False) == model_id
    assert resolve_alias(model_id, has_image=True) == model_id


@pytest.mark.parametrize("name", ["pixverse-v7", "kling-3", "", "pixverse v6"])
def test_unknown_aliases(name):
    assert resolve_alias(name, has_image=False) is None


def priced(model_id, **fields):
    return estimate_cost_usd(model_id, validate_input(model_id, {**MINIMAL[model_id], **fields}))


def test_v6_image_to_video_is_priced_per_second_with_an_audio_tier():
    assert priced(V6_I2V) == 0.225  # 720p default, 5 s default, no audio
    assert priced(V6_I2V, generate_audio_switch=True) == 0.3
    assert priced(V6_I2V, resolution="1080p", duration=10, generate_audio_switch=True) == 1.15
    assert priced(V6_I2V, resolution="360p", duration=7) == 0.175
    assert priced(V6_I2V, resolution="480p") is None  # offered, but not on the price list


def test_prices_are_rounded_to_four_decimals():
    assert priced(V6_I2V, resolution="360p", duration=3, generate_audio_switch=True) == 0.105


def test_v56_prices_only_where_the_reseller_card_matches_exactly():
    assert priced(V56_T2V) == 0.65
    assert priced(V56_T2V, duration=10) == 1.43
    assert priced(V56_T2V, resolution="1080p") == 0.75
    assert priced(V56_T2V, resolution="1080p", duration=10) is None
    assert priced(V56_T2V, duration=3) is None
    assert priced(V56_T2V, resolution="2160p") is None
    assert priced(V56_I2V) == 0.65
    assert priced(V56_I2V, duration="10") == 1.43
    assert priced(V56_I2V, resolution="1080p", duration="10") is None


@pytest.mark.parametrize("model_id", [V6_T2V, C1_T2V, C1_I2V])
def test_unpublished_prices_are_none(model_id):
    assert priced(model_id) is None


def test_price_of_incomplete_input_is_none():
    assert estimate_cost_usd(V6_I2V, {}) is None
    assert estimate_cost_usd("unknown", {"resolution": "720p", "duration": 5}) is None


def test_describe_catalog_shape():
    described = describe_catalog()
    json.dumps(described)
    assert [m["id"] for m in described] == list(MODELS)
    param_keys = {"name", "type", "required", "default", "allowed", "minimum", "maximum"}
    for model in described:
        assert set(model) == {"id", "title", "kind", "submit_path", "parameters", "pricing"}
        for param in model["parameters"]:
            assert set(param) == param_keys | {"description"}
            assert param["type"] in {"string", "integer", "boolean"}
            assert param["description"]
    by_id = {m["id"]: {p["name"]: p for p in m["parameters"]} for m in described}
    assert by_id[V6_T2V]["duration"] | {"description": ""} == {
        "name": "duration",
        "type": "integer",
        "required": False,
        "default": 5,
        "allowed": None,
        "minimum": 1,
        "maximum": 15,
        "description": "",
    }
    assert by_id[V6_I2V]["resolution"]["allowed"] == ["360p", "480p", "720p", "1080p"]
    assert by_id[V56_I2V]["duration"]["type"] == "string"
    assert by_id[V56_I2V]["duration"]["allowed"] == ["5", "10"]
    assert by_id[V56_T2V]["duration"]["allowed"] == [3, 5, 7, 10]
    assert by_id[V56_T2V]["aspect_ratio"]["required"] is True
    assert by_id[V6_T2V]["style"]["default"] is None


def test_describe_catalog_pricing():
    pricing = {m["id"]: m["pricing"] for m in describe_catalog()}
    assert pricing[V6_T2V] is None and pricing[C1_T2V] is None and pricing[C1_I2V] is None
    assert pricing[V6_I2V]["unit"] == "per_second"
    assert len(pricing[V6_I2V]["rates"]) == 8
    assert pricing[V56_T2V]["unit"] == "per_video"
    assert {"resolution": "720p", "duration": 10, "price": 1.43} in pricing[V56_I2V]["rates"]
