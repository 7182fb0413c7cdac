"""EmpirioLabs' page (``gateway-empiriolabs-pixverse-v5-6.txt``) run against the real stack with
only the base URL and the key swapped: its cURL submit body and its Python sample as printed
(``requests.post(...)``, ``job['job_id']``, the ``while True`` loop on ``status``), plus the
values Pixazo cannot honour, refused with 422s that name the field."""

from __future__ import annotations

import time

import pytest
import requests

from orchestrator.core import keys
from orchestrator.intake.dialects import empiriolabs
from tests.system.lifecycle_helpers import JOB_WAIT_SECONDS, events_for, wait_events_settled

pytestmark = pytest.mark.integration

# The page's cURL submit: -d '{ "model": "pixverse-v5-6", "prompt": "..." }'
CURL_BODY = """{
    "model": "pixverse-v5-6",
    "prompt": "Describe what you want Pixverse v5.6 to generate."
  }"""


def run_python_sample(base_url: str, api_key: str) -> tuple[dict, dict]:
    """The page's Python sample, with "https://api.empiriolabs.ai" and "YOUR_EMPIRIOLABS_API_KEY"
    swapped; ``print`` is kept. Added: a deadline (a broken run must not hang the suite)."""
    deadline = time.monotonic() + JOB_WAIT_SECONDS

    response = requests.post(  # noqa: S113 (as printed; pytest-timeout bounds the test)
        f"{base_url}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json={
            "model": "pixverse-v5-6",
            "prompt": "Describe what you want Pixverse v5.6 to generate.",
        },
    )
    job = response.json()

    # Generation runs as an async job. Poll until it completes.
    while True:
        status = requests.get(  # noqa: S113 (as printed)
            f"{base_url}/v1/jobs/{job['job_id']}",
            headers={"Authorization": f"Bearer {api_key}"},
        ).json()
        if status.get("status") in ("completed", "failed"):
            print(status)
            break
        assert time.monotonic() < deadline, status
        time.sleep(5)
    return job, status


def test_python_sample_as_printed(system):
    _, api_key = system.new_client("emp_sample")
    job, status = run_python_sample(system.web, api_key)
    assert job["job_id"].startswith("job_") and job["status"] == "queued"
    assert status["status"] == "completed" and status["job_id"] == job["job_id"]
    assert status["result"]["url"] == status["output"]["media_url"][0]
    # EmpirioLabs' defaults Pixazo can honour: 1080p, 16:9, 5 s; its audio default is not applied
    assert status["input"] == {
        "prompt": "Describe what you want Pixverse v5.6 to generate.",
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "duration": 5,
    }
    assert status["result"]["duration"] == 5 and status["result"]["resolution"] == "1920x1080"
    assert status["warnings"] == [{"field": "audio", "message": empiriolabs.AUDIO_WARNING}]
    # an ordinary job: its event carries the same warnings
    wait_events_settled(system, job["job_id"])
    events = events_for(system, "emp_sample", job["job_id"])
    assert [e["type"] for e in events] == ["job.completed"]
    assert events[0]["payload"]["data"]["warnings"] == status["warnings"]
    submits = system.sim_stats()["submits_received"]
    assert submits == 1


def test_curl_submit_body_verbatim_then_curl_poll(system):
    _, api_key = system.new_client("emp_curl")
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        data=CURL_BODY,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["job_id"]
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while True:  # curl .../v1/jobs/JOB_ID -H "Authorization: Bearer $EMPIRIOLABS_API_KEY"
        polled = requests.get(
            f"{system.web}/v1/jobs/{job_id}",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=10,
        ).json()
        if polled["status"] in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, polled
        time.sleep(1)
    assert polled["status"] == "completed" and polled["result"]["url"]


def test_image_to_video_with_the_page_parameters(system):
    _, api_key = system.new_client("emp_i2v")
    body = {
        "model": "pixverse-v5-6",
        "prompt": "The cat turns its head.",
        "mode": "i2v",
        "image": "https://images.example.com/cat.png",
        "resolution": "720p",
        "duration": "5s",
        "audio": False,
        "style": "none",
        "thinking": "auto",
        "negative_prompt": "blur",
    }
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json=body,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert job["model"] == "pixverse-i2v"
    assert job["input"] == {
        "prompt": "The cat turns its head.",
        "image_url": "https://images.example.com/cat.png",
        "resolution": "720p",
        "duration": "5",
        "negative_prompt": "blur",
    }
    assert [w["field"] for w in job["warnings"]] == ["aspect_ratio"]


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"audio": True}, "audio", "no audio"),
        ({"duration": "8s"}, "duration", "'8s' is not offered"),
        ({"thinking": "enabled"}, "thinking", "only 'auto'"),
        ({"thinking": "disabled"}, "thinking", "only 'auto'"),
        (
            {
                "mode": "i2v",
                "image": "https://images.example.com/a.png",
                "image_end": "https://images.example.com/b.png",
            },
            "image_end",
            "no end frame",
        ),
        ({"mode": "i2v"}, "image", "Required for mode i2v"),
        ({"style": "anime"}, "style", "takes no style"),
        ({"resolution": "540p"}, "input.resolution", "Must be one of"),
    ],
)
def test_values_pixazo_cannot_honour_are_422_naming_the_field(system, extra, field, words):
    _, api_key = system.new_client("emp_refused")
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"model": "pixverse-v5-6", "prompt": "x", **extra},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and set(error["details"]) == {field}
    assert words in str(error["details"][field])
    assert system.redis.zcard(keys.ALL_JOBS) == 0
    assert system.sim_stats()["submits_received"] == 0
