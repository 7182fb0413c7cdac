"""skills.video's client over real processes: every example body its PixVerse V6 page prints,
verbatim, through ``POST /api/v1/generation/pixverse/v6``, polled at
``GET /api/v1/generation/{id}`` until a terminal status; each generation is an ordinary
completed job with one verified event at the consumer."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from tests.system.lifecycle_helpers import (
    JOB_WAIT_SECONDS,
    events_for,
    wait_events_settled,
    wait_sim_idle,
)

pytestmark = pytest.mark.integration

# upstream-docs/gateway-skillsvideo-pixverse-v6.txt, verbatim: the request example (a template
# whose "<string>" placeholders are not values) and the normalised input its answer shows.
PAGE_REQUEST_EXAMPLE = {"prompt": "<string>", "image_url": "<string>"}
PAGE_ANSWER_INPUT = {
    "prompt": "a cat walking through neon rain",
    "duration": 5,
    "aspect_ratio": "16:9",
    "n": 1,
}
IMAGE = "https://images.example.com/cat.png"
ROUTE = "/api/v1/generation/pixverse/v6"
TERMINAL_WORDS = ("COMPLETED", "FAILED", "CANCELED")


def _run_to_completion(system, key: str, body: dict, model: str) -> dict:
    api = system.api(key)
    answer = api.post(f"{system.web}{ROUTE}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    created = answer.json()
    assert created["status"] == "IN_QUEUE"
    assert {"total", "subscription", "permanent"} <= set(created["usage"])
    generation_id = created["id"]

    def terminal():
        got = api.get(f"{system.web}/api/v1/generation/{generation_id}", timeout=10).json()
        return got if got["status"] in TERMINAL_WORDS else None

    done = wait_for(terminal, JOB_WAIT_SECONDS, what=f"generation {generation_id} terminal")
    assert done["status"] == "COMPLETED", done
    assert done["output"]["url"] and "code" not in done
    job = system.job(key, generation_id)
    assert job["status"] == "completed" and job["model"] == model
    assert job["request_id"].startswith(f"{model}_") and job["attempts"] == 1
    assert job["output"]["media_url"] == done["output"]["urls"]
    wait_events_settled(system, generation_id)
    return created


def test_the_page_request_example_verbatim_is_422_naming_the_placeholder(system):
    _, key = system.new_client("skills")
    answer = system.api(key).post(f"{system.web}{ROUTE}", json=PAGE_REQUEST_EXAMPLE, timeout=10)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and set(error["details"]) == {"image_url"}
    assert system.sim_stats()["requests"] == 0


def test_the_page_examples_complete_as_ordinary_jobs(system):
    _, key = system.new_client("skills")
    text = _run_to_completion(system, key, PAGE_ANSWER_INPUT, "pixverse-v6-text-to-video")
    assert {k: text["input"][k] for k in PAGE_ANSWER_INPUT} == PAGE_ANSWER_INPUT
    filled = {**PAGE_REQUEST_EXAMPLE, "prompt": PAGE_ANSWER_INPUT["prompt"], "image_url": IMAGE}
    image = _run_to_completion(system, key, filled, "pixverse-v6-image-to-video")
    assert image["input"]["image_url"] == IMAGE
    assert [w["field"] for w in image["warnings"]] == ["aspect_ratio"]
    wait_sim_idle(system)
    for created in (text, image):
        events = events_for(system, "skills", created["id"])
        assert [(e["type"], e["verified"]) for e in events] == [("job.completed", True)]
    assert system.sim_stats()["accepted_by_model"] == {
        "pixverse-v6-text-to-video": 1,
        "pixverse-v6-image-to-video": 1,
    }
