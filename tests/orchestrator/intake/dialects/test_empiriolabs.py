"""EmpirioLabs: how a request is recognised as its own, its defaults that Pixazo can honour, and
the ones it cannot (left out, said so in ``warnings``)."""

from __future__ import annotations

import pytest

from orchestrator.core import catalog
from orchestrator.intake.dialects import empiriolabs, videos

IMAGE = "https://images.example.com/cat.png"
# The page's cURL and Python example body, verbatim.
PAGE_EXAMPLE = {
    "model": "pixverse-v5-6",
    "prompt": "Describe what you want Pixverse v5.6 to generate.",
}


@pytest.mark.parametrize(
    ("model", "recognised"),
    [
        ("pixverse-v5-6", True),
        (" Pixverse-V5-6 ", True),
        ("pixverse/v5.6", False),  # aigateway.sh
        ("pixverse-5-6", False),  # apiin.one
        ("pixverse-v6", False),
        (None, False),
    ],
)
def test_recognised_by_its_model_name(model, recognised):
    assert empiriolabs.recognises({"model": model, "prompt": "x"}) is recognised


def test_page_example_gets_the_defaults_pixazo_can_honour_and_a_warning_for_audio():
    result = videos.translate(PAGE_EXAMPLE)
    assert result.body == {
        "model": catalog.V56_T2V,
        "input": {
            "prompt": "Describe what you want Pixverse v5.6 to generate.",
            "resolution": "1080p",
            "aspect_ratio": "16:9",
            "duration": 5,
        },
    }
    assert result.warnings == [{"field": "audio", "message": empiriolabs.AUDIO_WARNING}]


def test_image_to_video_defaults_and_the_aspect_ratio_it_cannot_apply():
    result = videos.translate({**PAGE_EXAMPLE, "mode": "i2v", "image": IMAGE})
    assert result.body["model"] == catalog.V56_I2V
    assert result.body["input"] == {
        "prompt": PAGE_EXAMPLE["prompt"],
        "image_url": IMAGE,
        "resolution": "1080p",
        "duration": "5",
    }
    assert [w["field"] for w in result.warnings] == ["aspect_ratio", "audio"]


@pytest.mark.parametrize("spelling", ["audio", "generate_audio", "generate_audio_switch"])
def test_audio_false_given_means_no_audio_warning(spelling):
    result = videos.translate({**PAGE_EXAMPLE, spelling: False})
    assert result.warnings == []


def test_explicit_values_win_over_the_defaults():
    body = {
        **PAGE_EXAMPLE,
        "mode": "t2v",
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "duration": "10s",
        "audio": False,
        "style": "none",
        "thinking": "auto",
        "negative_prompt": "blur",
        "image_end": None,
    }
    result = videos.translate(body)
    assert result.body["input"] == {
        "prompt": PAGE_EXAMPLE["prompt"],
        "resolution": "720p",
        "aspect_ratio": "9:16",
        "duration": 10,
        "negative_prompt": "blur",
    }
    assert result.warnings == []


def test_other_gateways_do_not_get_empiriolabs_defaults():
    result = videos.translate({"model": "pixverse/v5.6", "prompt": "x"})
    assert result.body["input"]["resolution"] == "720p" and result.warnings == []


def test_resolution_pixazo_v56_does_not_offer_is_left_to_the_catalog():
    # EmpirioLabs lists 360p/540p; Pixazo's v5.6 does not: parse_job_request names input.resolution
    result = videos.translate({**PAGE_EXAMPLE, "resolution": "540p"})
    assert result.body["input"]["resolution"] == "540p"
