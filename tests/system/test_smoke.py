"""The harness itself: one job through every real process."""

import pytest

from tests.conftest import wait_for

pytestmark = pytest.mark.integration


def test_one_job_end_to_end(system):
    client, key = system.new_client("smoke")
    answer = system.api(key).post(
        f"{system.web}/v1/jobs",
        json={"model": "pixverse-v6-text-to-video", "input": {"prompt": "a cat"}},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["id"]
    done = wait_for(lambda: system.job(key, job_id)["status"] == "completed", what="completion")
    assert done
    events = wait_for(lambda: system.consumer_events("smoke"), what="event")
    assert [e["type"] for e in events] == ["job.completed"]
    assert events[0]["verified"] is True
