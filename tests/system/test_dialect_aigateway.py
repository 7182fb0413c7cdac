"""aigateway.sh's page (``gateway-aigateway-pixverse-5-6.txt``) run against the real stack with
only the base URL and the key swapped: every example body it prints, verbatim, then its documented
poll loop, "poll /v1/jobs/<id> until status === "completed"", then ``result.url``."""

from __future__ import annotations

import time

import pytest
import requests

from orchestrator.core import keys
from tests.system.lifecycle_helpers import JOB_WAIT_SECONDS, events_for, wait_events_settled

pytestmark = pytest.mark.integration
POLL_SECONDS = 1.0

# The page's Quickstart, the curl -d argument as printed:
QUICKSTART_BODY = '{"model":"pixverse/v5.6","prompt":"a drone shot of a mountain lake"}'
# The page's "Request body" (its // comment is not JSON and is left out).
SCHEMA_BODY = {
    "model": "pixverse/v5.6",
    "prompt": "A drone shot of a mountain lake at golden hour",
    "duration": 5,  # seconds
    "aspect_ratio": "16:9",
}


def poll_until_completed(base: str, api_key: str, job_id: str) -> dict:
    """The page's loop: GET /v1/jobs/<id> until status === "completed" (a failed job ends it
    too, and a deadline keeps a broken run from hanging)."""
    deadline = time.monotonic() + JOB_WAIT_SECONDS
    while True:
        job = requests.get(
            f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        ).json()
        if job["status"] == "completed" or job["status"] == "failed":
            return job
        assert time.monotonic() < deadline, job
        time.sleep(POLL_SECONDS)


def check_answer(job: dict, created_before: float) -> None:
    """The page's Response: {"id": "job_...", "status": "queued", "model", "created": <unix>}."""
    assert job["id"].startswith("job_")
    assert job["status"] in ("queued", "processing")
    assert isinstance(job["created"], int) and abs(job["created"] - created_before) < 60
    assert job["model"] == "pixverse"  # Pixazo's v5.6 text-to-video, named as in /v1/models


def check_completed(job: dict, resolution: str) -> None:
    assert job["status"] == "completed"
    assert job["result"]["url"] == job["output"]["media_url"][0]
    assert job["result"]["url"].startswith("http")
    assert job["result"]["duration"] == 5 and job["result"]["resolution"] == resolution
    assert job["warnings"] == []


def test_quickstart_curl_body_verbatim_then_poll_until_completed(system):
    _, api_key = system.new_client("aig_quick")
    started = time.time()
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        data=QUICKSTART_BODY,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    check_answer(job, started)
    done = poll_until_completed(system.web, api_key, job["id"])
    check_completed(done, "1280x720")  # the gateways' common default: 720p, 16:9
    print(done["result"]["url"])
    assert system.sim_stats()["submits_received"] == 1


def test_api_schema_request_body_then_poll_then_result_url(system):
    _, api_key = system.new_client("aig_schema")
    started = time.time()
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json=SCHEMA_BODY,
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job = answer.json()
    check_answer(job, started)
    assert job["input"]["duration"] == 5 and job["input"]["aspect_ratio"] == "16:9"
    done = poll_until_completed(system.web, api_key, job["id"])
    check_completed(done, "1280x720")
    # an ordinary job: listed, and its event delivered with the same answer fields
    listed = system.api(api_key).get(f"{system.web}/v1/jobs", timeout=10).json()["data"]
    assert [j["id"] for j in listed] == [job["id"]]
    wait_events_settled(system, job["id"])
    events = events_for(system, "aig_schema", job["id"])
    assert [e["type"] for e in events] == ["job.completed"]
    assert events[0]["payload"]["data"]["result"] == done["result"]


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ({"audio": True}, "audio", "no audio"),
        ({"duration": "8s"}, "duration", "not offered"),
        ({"duration": 8}, "input.duration", "Must be one of"),
        ({"thinking_type": "enabled"}, "thinking_type", "only 'auto'"),
    ],
)
def test_values_pixazo_cannot_honour_are_422_naming_the_field(system, extra, field, words):
    _, api_key = system.new_client("aig_refused")
    answer = requests.post(
        f"{system.web}/v1/videos/generations",
        headers={"Authorization": f"Bearer {api_key}"},
        json={**SCHEMA_BODY, **extra},
        timeout=10,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and set(error["details"]) == {field}
    assert words in str(error["details"][field])
    assert system.redis.zcard(keys.ALL_JOBS) == 0
    assert system.sim_stats()["submits_received"] == 0
