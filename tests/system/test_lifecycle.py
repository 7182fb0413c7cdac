"""The whole lifecycle over real processes: HTTP intake -> Celery -> simulator -> receiver ->
signed event at the consumer, for every model (one test case each) and every kind of upstream
outcome."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from orchestrator.core import keys
from orchestrator.core.catalog import MODELS
from tests.helpers import job_event_ids, wait_for
from tests.orchestrator.model_inputs import VALID_INPUTS
from tests.system.lifecycle_helpers import (
    events_for,
    submit,
    wait_events_settled,
    wait_sim_idle,
    wait_terminal,
)

pytestmark = pytest.mark.integration


def test_the_lifecycle_covers_the_six_models() -> None:
    """The parametrization below is over the catalog; every model in it has a valid input."""
    assert len(MODELS) == 6
    assert set(VALID_INPUTS) == set(MODELS)


@pytest.mark.parametrize("model", list(MODELS))
def test_each_model_completes_with_one_verified_event(system, model):
    _, key = system.new_client("six")
    answer = submit(system, key, model, VALID_INPUTS[model])
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "queued"
    job_id = answer.json()["id"]
    job = wait_terminal(system, key, job_id)
    assert job["status"] == "completed", job
    assert job["request_id"].startswith(f"{model}_")
    assert job["upstream_status"] == "COMPLETED" and job["error"] is None
    assert job["output"]["media_type"] == "video/mp4" and job["output"]["media_url"]
    assert job["completed_at"] and job["attempts"] == 1
    media = requests.get(job["output"]["media_url"][0], timeout=10)
    assert media.status_code == 200 and media.headers["Content-Type"] == "video/mp4"
    moves = [e.get("to") for e in system.timeline(job_id) if e["type"] == "transition"]
    assert "submitted" in moves and moves[-1] == "completed"
    wait_events_settled(system, job_id)
    wait_sim_idle(system)
    events = system.consumer_events("six")
    assert len(events) == 1
    assert all(e["verified"] and e["type"] == "job.completed" for e in events)
    assert [e["job_id"] for e in events] == [job_id]
    for e in events:
        assert e["payload"]["data"]["status"] == "completed"
        assert e["payload"]["data"]["output"]["media_url"]
    stats = system.sim_stats()
    assert stats["accepted_by_model"] == {model: 1}
    assert stats["submits_accepted"] == 1


@pytest.mark.parametrize(
    ("knob", "code"), [("failure_rate", "upstream_failed"), ("error_rate", "upstream_error")]
)
def test_upstream_failure_fails_the_job_with_one_event(system, knob, code):
    _, key = system.new_client("fails")
    system.sim_config(**{knob: 1.0})
    job_id = submit(
        system, key, "pixverse-v6-text-to-video", VALID_INPUTS["pixverse-v6-text-to-video"]
    ).json()["id"]
    job = wait_terminal(system, key, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert job["request_id"] and job["output"] is None
    wait_events_settled(system, job_id)
    wait_sim_idle(system)
    events = events_for(system, "fails", job_id)
    assert [(e["type"], e["verified"]) for e in events] == [("job.failed", True)]
    assert events[0]["payload"]["data"]["error"]["code"] == code


def test_duplicate_callbacks_change_nothing(system):
    _, key = system.new_client("dups")
    job_id = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
    job = wait_terminal(system, key, job_id)
    assert job["status"] == "completed"
    wait_events_settled(system, job_id)
    wait_sim_idle(system)
    resends = 3
    for _ in range(resends):
        answer = requests.post(f"{system.sim}/_sim/requests/{job['request_id']}/resend", timeout=5)
        assert answer.status_code == 200, answer.text
    wait_sim_idle(system)

    def duplicates() -> int:
        entries = system.timeline(job_id)
        return sum(1 for e in entries if e["type"] == "callback" and e.get("duplicate"))

    wait_for(lambda: duplicates() == resends, 20, what="duplicates on the timeline")
    assert len(job_event_ids(system.redis, job_id)) == 1
    assert system.redis.zcard(keys.DUE_CALLBACK) == 0
    events = events_for(system, "dups", job_id)
    assert [e["type"] for e in events] == ["job.completed"]
    assert system.job(key, job_id) == job


def test_forged_callback_token_is_404_and_changes_nothing(system):
    _, key = system.new_client("forge")
    job_id = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
    job = wait_terminal(system, key, job_id)
    wait_events_settled(system, job_id)
    timeline = system.timeline(job_id)
    forged = {"request_id": job["request_id"], "status": "FAILED", "error": "forged"}
    for token in ("0" * 64, "nope"):
        answer = requests.post(
            f"{system.web}/webhooks/pixazo/{job_id}/{token}", json=forged, timeout=5
        )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    assert system.job(key, job_id) == job
    assert system.timeline(job_id) == timeline
    assert len(events_for(system, "forge", job_id)) == 1


@pytest.mark.parametrize(
    ("knobs", "http_code", "code"),
    [
        ({"disabled_models": ["pixverse-c1-text-to-video"]}, "400", "upstream_rejected"),
        ({"rate_403": 1.0}, "403", "upstream_auth"),
        ({"api_key": "a-rotated-key"}, "401", "upstream_auth"),  # our key is now wrong
    ],
)
def test_pixazo_refusals_fail_at_once(system, knobs, http_code, code):
    _, key = system.new_client("refused")
    system.sim_config(**knobs)
    job_id = submit(
        system, key, "pixverse-c1-text-to-video", VALID_INPUTS["pixverse-c1-text-to-video"]
    ).json()["id"]
    job = wait_terminal(system, key, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == code, job
    assert job["request_id"] is None and job["attempts"] == 1
    wait_events_settled(system, job_id)
    stats = system.sim_stats()
    assert stats["submits_received"] == 1 and stats["submits_accepted"] == 0
    assert stats["rejected_by_code"] == {http_code: 1}
    events = events_for(system, "refused", job_id)
    assert [(e["type"], e["verified"]) for e in events] == [("job.failed", True)]


def test_cli_clients_create_prints_the_contract_json(system):
    env = {**system.orch.env}
    hook = f"{system.consumer}/hooks/cli"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "clients",
            "create",
            "cli-made",
            "--callback-url",
            hook,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else on stdout
    created = json.loads(lines[0])
    assert set(created) == {"client_id", "api_key", "webhook_secret"}
    assert created["api_key"].startswith("pxo_")
    assert created["webhook_secret"].startswith("whsec_")
    stored = system.redis.hgetall(keys.client(created["client_id"]))
    assert stored["callback_url"] == hook
    assert created["api_key"] not in json.dumps(stored)  # stored hashed
    answer = submit(system, created["api_key"], "pixverse", VALID_INPUTS["pixverse"])
    assert answer.status_code == 202


def test_secrets_never_reach_a_process_log(system):
    client, key = system.new_client("secrets")
    job_ids = [
        submit(system, key, m, VALID_INPUTS[m]).json()["id"] for m in ("pixverse", "pixverse-i2v")
    ]
    for job_id in job_ids:
        wait_terminal(system, key, job_id)
        wait_events_settled(system, job_id)
    for knobs in ({"failure_rate": 1.0}, {"rate_403": 1.0}, {"disabled_models": ["pixverse"]}):
        system.sim_config(**knobs)
        failed = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
        assert wait_terminal(system, key, failed)["status"] == "failed"
        wait_events_settled(system, failed)
        system.sim_config(failure_rate=0.0, rate_403=0.0, disabled_models=[])
    requests.post(
        f"{system.web}/v1/jobs",
        json={"model": "pixverse"},
        headers={"Authorization": f"Bearer {key}x"},
        timeout=5,
    )
    workdir = system.orch.stack.workdir
    env = system.orch.env
    ours = [p for p in workdir.glob("*.log") if not p.name.startswith(("sim", "redis"))]
    assert {p.stem for p in ours} >= {"web", "worker1", "beat", "consumer"}
    secrets = {
        "pixazo key": env["PIXAZO_API_KEY"],
        "secret key": env["ORCHESTRATOR_SECRET_KEY"],
        "api key": key,
        "webhook secret": client.webhook_secrets[0],
    }
    for path in ours:
        text = path.read_text(errors="replace")
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in {path.name}"
        assert not re.search(r"whsec_[A-Za-z0-9+/=]{20,}", text), path.name
        assert not re.search(r"pxo_[A-Za-z0-9_\-]{20,}", text), path.name
        assert not re.search(r"/webhooks/pixazo/job_\w+/[0-9a-f]{64}", text), path.name


def test_cancel_while_pixazo_holds_the_submit_stays_canceled(system):
    _, key = system.new_client("cancel")
    system.sim_config(submit_delay_seconds=2.0)
    job_id = submit(system, key, "pixverse", VALID_INPUTS["pixverse"]).json()["id"]
    wait_for(
        lambda: system.redis.hget(keys.job(job_id), "status") == "submitting",
        20,
        what="submit in flight",
    )
    answer = system.api(key).post(f"{system.web}/v1/jobs/{job_id}/cancel", timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "canceled"
    again = system.api(key).post(f"{system.web}/v1/jobs/{job_id}/cancel", timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_cancelable"
    wait_for(lambda: system.sim_stats()["submits_accepted"] == 1, 20, what="accepted")
    wait_sim_idle(system)  # Pixazo finished the (charged) video and called back
    wait_events_settled(system, job_id)
    job = system.job(key, job_id)
    assert job["status"] == "canceled" and job["error"]["code"] == "canceled"
    assert job["output"] is None
    events = events_for(system, "cancel", job_id)
    assert [(e["type"], e["verified"]) for e in events] == [("job.canceled", True)]
