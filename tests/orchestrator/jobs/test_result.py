"""The gateways' ``result`` summary of a completed job."""

from __future__ import annotations

import pytest

from orchestrator.jobs.result import result_of

URL = "https://cdn.example.com/v.mp4"
OUTPUT = {"media_url": [URL], "media_type": "video/mp4"}


@pytest.mark.parametrize(
    ("job_input", "duration", "resolution"),
    [
        ({"resolution": "1080p", "aspect_ratio": "16:9", "duration": 5}, 5, "1920x1080"),
        ({"resolution": "720p", "aspect_ratio": "9:16", "duration": 10}, 10, "720x1280"),
        ({"resolution": "720p", "aspect_ratio": "1:1", "duration": 5}, 5, "720x720"),
        ({"resolution": "1080p", "duration": "5"}, 5, "1080p"),  # i2v: the image's ratio
        ({}, None, None),
        ({"resolution": "720p", "aspect_ratio": "0:1", "duration": True}, None, "720p"),
    ],
)
def test_result_of_a_completed_job(job_input, duration, resolution):
    assert result_of("completed", job_input, OUTPUT) == {
        "url": URL,
        "duration": duration,
        "resolution": resolution,
    }


@pytest.mark.parametrize(
    ("status", "output"),
    [
        ("processing", OUTPUT),
        ("completed", None),
        ("completed", {"media_url": []}),
        ("completed", {"media_url": [3]}),
    ],
)
def test_no_result_before_completion_or_without_a_url(status, output):
    assert result_of(status, {"duration": 5}, output) is None
