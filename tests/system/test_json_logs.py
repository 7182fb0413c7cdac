"""LOG_FORMAT=json over real processes: the worker's and the delivery process's lines are JSON
objects naming the task, its id, the job and the client, and carry no secret."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from devtools.devstack import SIM_API_KEY, Stack
from tests.helpers import System, start_system
from tests.orchestrator.model_inputs import VALID_INPUTS
from tests.system.lifecycle_helpers import submit, wait_events_settled, wait_terminal

pytestmark = pytest.mark.integration
MODEL = "pixverse-v6-text-to-video"


@pytest.fixture
def json_system() -> Iterator[System]:
    stack = Stack(supervise=True)
    _, redis_url = stack.start_redis()
    stack, system = start_system(redis_url, env_overrides={"LOG_FORMAT": "json"}, stack=stack)
    try:
        yield system
    finally:
        stack.stop_all()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_task_lines_name_the_task_the_job_and_the_client(json_system):
    system = json_system
    client, key = system.new_client("logs")
    job_id = submit(system, key, MODEL, VALID_INPUTS[MODEL]).json()["id"]
    assert wait_terminal(system, key, job_id)["status"] == "completed"
    wait_events_settled(system, job_id)
    assert system.orch.delivery is not None
    worker = json_lines(system.orch.workers[0].log())
    delivery = json_lines(system.orch.delivery.log())
    submits = [line for line in worker if line.get("task_name") == "workers.submit.submit_job"]
    assert submits, system.orch.workers[0].log()[-4000:]
    assert all(line["task_id"] and line.get("job_id") == job_id for line in submits), submits
    assert any(line.get("client_id") == client.id for line in submits)
    sent = [line for line in delivery if line.get("task_name") == "workers.delivery.deliver_event"]
    assert sent and all(line.get("job_id") == job_id for line in sent), sent
    assert all(line.get("client_id") == client.id for line in sent)
    assert any("'delivered'" in line["message"] for line in sent)
    ours = [*system.orch.workers, system.orch.delivery, system.orch.web]
    everything = "".join(proc.log() for proc in ours if proc is not None)
    assert SIM_API_KEY not in everything and key not in everything
