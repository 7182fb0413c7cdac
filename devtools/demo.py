"""``orchestrator demo``: the whole system on this machine, one job per model, end to end."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import click
import requests

from devtools.devstack import Orchestrator, Stack, base_env

DEMO_INPUTS: dict[str, dict[str, Any]] = {
    "pixverse-v6-text-to-video": {
        "prompt": "A cat watching birds from a sunny window",
        "duration": 5,
        "resolution": "720p",
    },
    "pixverse-v6-image-to-video": {
        "prompt": "Snow starts falling around the tree",
        "image_url": "https://example.com/tree.png",
        "duration": 5,
    },
    "pixverse-c1-text-to-video": {
        "prompt": "A paper boat drifting down a rainy street",
        "style": "clay",
    },
    "pixverse-c1-image-to-video": {
        "prompt": "The portrait slowly smiles",
        "image_url": "https://example.com/portrait.webp",
    },
    "pixverse": {
        "prompt": "A drone shot over a mountain lake at golden hour",
        "aspect_ratio": "16:9",
        "resolution": "1080p",
        "duration": 5,
    },
    "pixverse-i2v": {
        "prompt": "A dragon breathes fire across a stormy sky",
        "image_url": "https://example.com/dragon.png",
        "resolution": "720p",
        "duration": "5",
    },
}
TERMINAL = ("completed", "failed", "canceled")
DEMO_OPERATOR = "demo"
DEMO_TIMEOUT_SECONDS = 180.0
_REFRESH_SECONDS = 0.5


def _start(stack: Stack) -> Orchestrator:
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        click.echo("REDIS_URL is unset: starting an embedded redis-server")
        _, redis_url = stack.start_redis()
    env = base_env(
        redis_url,
        ORCHESTRATOR_STUCK_AFTER_SECONDS="15",
        ORCHESTRATOR_RECONCILE_INTERVAL_SECONDS="1",
        ORCHESTRATOR_POLL_SCHEDULE="2,4,8",
    )
    orch = Orchestrator(stack, redis_url, env)
    click.echo("starting the Pixazo simulator, a demo consumer, web, worker and beat ...")
    orch.start_sim("--queued-seconds", "1", "--processing-seconds", "4")
    orch.start_consumer()
    orch.start_web()
    orch.start_worker()
    orch.start_beat()
    return orch


def _create_client(orch: Orchestrator) -> dict[str, str]:
    hook = f"{orch.consumer_url}/hooks/demo"
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "clients", "create", "demo", "--callback-url", hook],
        env={**os.environ, **orch.env},
        capture_output=True,
        text=True,
        check=True,
    )
    client = json.loads(out.stdout.strip().splitlines()[-1])
    requests.post(
        f"{orch.consumer_url}/_consumer/config",
        json={"name": "demo", "secret": client["webhook_secret"]},
        timeout=5,
    )
    return client


def _create_operator(orch: Orchestrator) -> str:
    """A console account for the demo; its password is printed once, at the end."""
    password = secrets.token_urlsafe(12)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "operators",
            "create",
            DEMO_OPERATOR,
            "--password-stdin",
            "--replace",
        ],
        env={**os.environ, **orch.env},
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return password


def _submit_all(orch: Orchestrator, api_key: str) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {api_key}"}
    jobs = {}
    for model, model_input in DEMO_INPUTS.items():
        answer = requests.post(
            f"{orch.web_url}/v1/jobs",
            headers=headers,
            timeout=10,
            json={"model": model, "input": model_input, "metadata": {"demo": True}},
        )
        answer.raise_for_status()
        jobs[answer.json()["id"]] = {"model": model, "started": time.monotonic(), **answer.json()}
    return jobs


def _follow(orch: Orchestrator, api_key: str, jobs: dict[str, dict[str, Any]]) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for job_id, job in jobs.items():
            if job["status"] in TERMINAL:
                continue
            fresh = requests.get(
                f"{orch.web_url}/v1/jobs/{job_id}", headers=headers, timeout=10
            ).json()
            if fresh["status"] != job["status"]:
                click.echo(f"  {job['model']:<28} {job['status']:>10} -> {fresh['status']}")
            job.update(fresh)
            if fresh["status"] in TERMINAL:
                job["seconds"] = time.monotonic() - job["started"]
        if all(j["status"] in TERMINAL for j in jobs.values()):
            return
        time.sleep(_REFRESH_SECONDS)
    click.echo("some jobs did not finish in time")


def _table(orch: Orchestrator, jobs: dict[str, dict[str, Any]], password: str) -> None:
    click.echo("")
    click.echo(f"{'model':<28} {'status':<10} {'seconds':>7}  media URL")
    for job in jobs.values():
        media = ((job.get("output") or {}).get("media_url") or ["-"])[0]
        seconds = f"{job['seconds']:.1f}" if "seconds" in job else "-"
        click.echo(f"{job['model']:<28} {job['status']:<10} {seconds:>7}  {media}")
    events = requests.get(
        f"{orch.consumer_url}/_consumer/events", params={"name": "demo"}, timeout=5
    ).json()
    verified = sum(1 for e in events if e.get("verified"))
    click.echo(f"\nconsumer received {len(events)} event(s), {verified} with a valid signature")
    click.echo(f"API docs:     {orch.web_url}/docs")
    click.echo(f"OpenAPI:      {orch.web_url}/openapi.json")
    click.echo(f"ops console:  {orch.web_url}/ops  (sign in as {DEMO_OPERATOR} / {password})")


@click.command("demo")
@click.option("--exit", "exit_after", is_flag=True, help="Stop once the table is printed.")
def demo_command(exit_after: bool) -> None:
    """Start everything, run one job per model, show the results; Ctrl-C stops it all."""
    stack = Stack(supervise=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        orch = _start(stack)
        client = _create_client(orch)
        password = _create_operator(orch)
        click.echo(f"demo client {client['client_id']} created; submitting one job per model")
        jobs = _submit_all(orch, client["api_key"])
        _follow(orch, client["api_key"], jobs)
        time.sleep(1.0)  # let the last events land at the consumer
        _table(orch, jobs, password)
        if not exit_after:
            click.echo("\nrunning; press Ctrl-C to stop every process")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\nstopping ...")
    finally:
        stack.stop_all()
        click.echo(f"all processes stopped (logs were in {stack.workdir})")
