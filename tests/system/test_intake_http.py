"""Intake over HTTP against the real stack: refusals reach nothing; a key reaches Pixazo once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from orchestrator.core import keys
from tests.orchestrator.model_inputs import INVALID_INPUTS, VALID_INPUTS
from tests.system.lifecycle_helpers import submit, wait_events_settled, wait_terminal

pytestmark = pytest.mark.integration
RACERS = 12


def test_invalid_request_per_model_is_422_and_reaches_nothing(system):
    _, key = system.new_client("invalid")
    for model, (model_input, path) in INVALID_INPUTS.items():
        answer = submit(system, key, model, model_input)
        assert answer.status_code == 422, (model, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "validation_error" and path in error["details"], error
    answer = system.api(key).post(f"{system.web}/v1/jobs", data="nope", timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
    assert system.redis.zcard(keys.ALL_JOBS) == 0
    assert list(system.redis.scan_iter("job:*")) == []
    stats = system.sim_stats()
    assert stats["submits_received"] == 0 and stats["requests"] == 0


def test_idempotent_intake_reaches_pixazo_once(system):
    _, key = system.new_client("idem")
    model_input = VALID_INPUTS["pixverse-v6-image-to-video"]
    first = submit(
        system, key, "pixverse-v6-image-to-video", model_input, **{"Idempotency-Key": "order-42"}
    )
    again = submit(
        system, key, "pixverse-v6-image-to-video", model_input, **{"Idempotency-Key": "order-42"}
    )
    assert (first.status_code, again.status_code) == (202, 200)
    job_id = first.json()["id"]
    assert again.json()["id"] == job_id
    job = wait_terminal(system, key, job_id)
    assert job["status"] == "completed"
    after = submit(
        system, key, "pixverse-v6-image-to-video", model_input, **{"Idempotency-Key": "order-42"}
    )
    assert after.status_code == 200 and after.json()["status"] == "completed"
    conflict = submit(
        system,
        key,
        "pixverse-v6-image-to-video",
        {**model_input, "duration": 8},
        **{"Idempotency-Key": "order-42"},
    )
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    wait_events_settled(system, job_id)
    stats = system.sim_stats()
    assert stats["submits_accepted"] == 1
    assert stats["accepted_by_model"] == {"pixverse-v6-image-to-video": 1}
    assert system.redis.zcard(keys.ALL_JOBS) == 1


def test_concurrent_requests_with_one_key_make_one_job(system):
    _, key = system.new_client("race")
    model_input = VALID_INPUTS["pixverse-c1-image-to-video"]
    barrier = threading.Barrier(RACERS)

    def post(_: int) -> tuple[int, str]:
        barrier.wait(10)
        answer = submit(
            system,
            key,
            "pixverse-c1-image-to-video",
            model_input,
            **{"Idempotency-Key": "same-order"},
        )
        return answer.status_code, answer.json()["id"]

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(post, range(RACERS)))
    codes = sorted(code for code, _ in results)
    assert codes == [200] * (RACERS - 1) + [202]
    assert len({job_id for _, job_id in results}) == 1
    job_id = results[0][1]
    assert wait_terminal(system, key, job_id)["status"] == "completed"
    wait_events_settled(system, job_id)
    assert system.sim_stats()["submits_accepted"] == 1
    assert system.redis.zcard(keys.ALL_JOBS) == 1
