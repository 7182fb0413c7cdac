"""apiin.one's client over real processes: the page's example body, verbatim, through
``POST /api/v1/videos/generations``, polled at ``GET /api/v1/tasks/{task_id}`` until a terminal
status; the task is an ordinary completed job with one verified event at the consumer."""

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

# upstream-docs/gateway-apiinone-pixverse-5-6.txt, "Example request", verbatim.
PAGE_EXAMPLE_BODY = {
    "model": "pixverse-5-6",
    "prompt": "A dragon flying over a medieval castle, fantasy style",
    "resolution": "720p",
    "duration": 5,
    "thinking_type": "auto",
}
TERMINAL_WORDS = ("completed", "failed", "canceled")


def test_the_page_example_completes_as_an_ordinary_job(system):
    _, key = system.new_client("apiinone")
    api = system.api(key)
    answer = api.post(f"{system.web}/api/v1/videos/generations", json=PAGE_EXAMPLE_BODY, timeout=10)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["task_id"]
    assert answer.json()["status"] == "pending"

    def terminal():
        task = api.get(f"{system.web}/api/v1/tasks/{task_id}", timeout=10).json()
        return task if task["status"] in TERMINAL_WORDS else None

    task = wait_for(terminal, JOB_WAIT_SECONDS, what=f"task {task_id} terminal")
    assert task["status"] == "completed", task
    assert task["result"]["url"] and task["result"]["media_type"] == "video/mp4"
    assert task["error"] is None and task["model"] == "pixverse-5-6"

    job = system.job(key, task_id)
    assert job["status"] == "completed" and job["model"] == "pixverse"
    assert job["request_id"].startswith("pixverse_") and job["attempts"] == 1
    assert job["output"]["media_url"] == task["result"]["urls"]
    assert job["input"] == {
        "prompt": PAGE_EXAMPLE_BODY["prompt"],
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "duration": 5,
    }
    wait_events_settled(system, task_id)
    wait_sim_idle(system)
    events = events_for(system, "apiinone", task_id)
    assert [(e["type"], e["verified"]) for e in events] == [("job.completed", True)]
    assert system.sim_stats()["accepted_by_model"] == {"pixverse": 1}


def test_a_thinking_mode_v56_lacks_is_422_and_reaches_nothing(system):
    _, key = system.new_client("apiinone")
    body = {**PAGE_EXAMPLE_BODY, "thinking_type": "enabled"}
    answer = system.api(key).post(f"{system.web}/api/v1/videos/generations", json=body, timeout=10)
    assert answer.status_code == 422
    assert "thinking_type" in answer.json()["error"]["details"]
    assert system.sim_stats()["requests"] == 0
