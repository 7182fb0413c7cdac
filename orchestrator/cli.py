"""The ``orchestrator`` command: clients, jobs, submissions, the simulator and the demo."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from orchestrator import actions, keys, upstream
from orchestrator.app import create_app
from orchestrator.clients import ALL_EVENT_TYPES, DEFAULT_EVENT_TYPES
from orchestrator.config import ConfigError
from orchestrator.consumer import consumer_command
from orchestrator.demo import demo_command
from orchestrator.services import Services, current
from orchestrator.sim.cli import sim_command
from orchestrator.state import PUBLIC_STATUSES
from orchestrator.urls import UnsafeUrl, check_consumer_url


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def with_services(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and run the command inside its context."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            app = create_app()
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        with app.app_context():
            return command(current(), *args, **kwargs)

    return wrapper


def _emit(data: Any, as_json: bool, text: str | None = None) -> None:
    if as_json or text is None:
        click.echo(json.dumps(data, indent=None if as_json else 2, default=str))
    else:
        click.echo(text)


def _result(result: actions.ActionResult, as_json: bool) -> None:
    _emit(
        {
            "ok": result.ok,
            "message": result.message,
            "status": result.status,
            **(result.data or {}),
        },
        as_json,
        result.message,
    )
    if not result.ok:
        sys.exit(1)


@click.group()
def cli() -> None:
    """Pixazo video job orchestrator."""


@cli.group()
def clients() -> None:
    """Client services and their API keys."""


def _checked_url(svc: Services, url: str | None) -> str | None:
    if url:
        try:
            check_consumer_url(url, svc.settings.allow_http)
        except UnsafeUrl as exc:
            raise click.BadParameter(str(exc), param_hint="--callback-url") from None
    return url


@clients.command("create")
@click.argument("name")
@click.option("--callback-url", default=None, help="Default endpoint for this client's events.")
@click.option("--event-types", default=",".join(DEFAULT_EVENT_TYPES), show_default=True)
@with_services
def clients_create(svc: Services, name: str, callback_url: str | None, event_types: str) -> None:
    """Create a client; prints its id, API key and webhook secret (shown once)."""
    types = _event_types(event_types)
    client, api_key = svc.clients.create(name, _checked_url(svc, callback_url), types)
    click.echo(
        json.dumps(
            {
                "client_id": client.id,
                "api_key": api_key,
                "webhook_secret": client.webhook_secrets[0],
            }
        )
    )


def _event_types(value: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in types if t not in ALL_EVENT_TYPES]
    if unknown:
        raise click.BadParameter(f"unknown event types {unknown}", param_hint="--event-types")
    return types


@clients.command("update")
@click.argument("client_id")
@click.option("--callback-url", default=None)
@click.option("--event-types", default=None)
@click.option("--enable-endpoint", is_flag=True, help="Re-enable an endpoint disabled by a 410.")
@click.option("--json", "as_json", is_flag=True)
@with_services
def clients_update(
    svc: Services,
    client_id: str,
    callback_url: str | None,
    event_types: str | None,
    enable_endpoint: bool,
    as_json: bool,
) -> None:
    """Change a client's endpoint or the event types it receives."""
    client = svc.clients.update(
        client_id,
        callback_url=_checked_url(svc, callback_url),
        event_types=_event_types(event_types) if event_types is not None else None,
        endpoint_disabled=False if enable_endpoint else None,
    )
    if client is None:
        raise click.ClickException(f"no client {client_id}")
    _emit(client.public(), as_json, f"updated {client.id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@with_services
def clients_rotate(svc: Services, client_id: str) -> None:
    """Add a new webhook secret; events are signed with both until the old one is dropped."""
    secret = svc.clients.rotate_secret(client_id)
    if secret is None:
        raise click.ClickException(f"no client {client_id}")
    click.echo(json.dumps({"client_id": client_id, "webhook_secret": secret}))


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_services
def clients_list(svc: Services, as_json: bool) -> None:
    rows = [c.public() for c in (svc.clients.get(i) for i in svc.clients.all_ids()) if c]
    text = "\n".join(f"{r['id']}  {r['name']}  {r['callback_url'] or '-'}" for r in rows)
    _emit(rows, as_json, text or "no clients")


@cli.group()
def jobs() -> None:
    """See and repair jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(PUBLIC_STATUSES), default=None)
@click.option("--client", "client_id", default=None)
@click.option("--model", default=None)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option("--cursor", default=None)
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_list(
    svc: Services,
    status: str | None,
    client_id: str | None,
    model: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Newest first; filter by status, client and model."""
    if client_id and status:
        index = keys.client_status_index(client_id, status)
    elif client_id:
        index = keys.client_index(client_id)
    elif status:
        index = keys.status_index(status)
    elif model:
        index = keys.model_index(model)
    else:
        index = keys.ALL_JOBS
    keep = (
        (lambda raw: raw.get("model") == model)
        if model and index != keys.model_index(model)
        else None
    )
    ids, next_cursor = svc.jobs.list_ids(index, limit, cursor, keep)
    rows = [j for j in (svc.jobs.get(i) for i in ids) if j]
    text = "\n".join(
        f"{j['id']}  {j['status']:<10} {j['model']:<28} {j['request_id'] or '-'}" for j in rows
    )
    _emit({"data": rows, "next_cursor": next_cursor}, as_json, text or "no jobs")


@jobs.command("show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_show(svc: Services, job_id: str, as_json: bool) -> None:
    """A job with its full timeline."""
    job = svc.jobs.get(job_id)
    if job is None and not job_id.startswith("job_"):
        found = svc.jobs.job_for_request(job_id)
        job = svc.jobs.get(found) if found else None
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    job["timeline"] = svc.jobs.timeline(job["id"])
    job["events"] = actions.job_event_ids(svc, job["id"])
    _emit(job, as_json, _job_text(job))


def _job_text(job: dict[str, Any]) -> str:
    lines = [
        f"{job['id']}  {job['status']}  {job['model']}",
        f"request_id: {job['request_id'] or '-'}   upstream: {job['upstream_status'] or '-'}",
        f"output: {(job['output'] or {}).get('media_url') or '-'}",
        f"error: {job['error'] or '-'}",
        "timeline:",
    ]
    for entry in job["timeline"]:
        rest = {k: v for k, v in entry.items() if k not in ("at", "type") and v not in (None, "")}
        lines.append(f"  {entry['at']}  {entry['type']:<17} {json.dumps(rest, default=str)[:160]}")
    return "\n".join(lines)


@jobs.command("retry")
@click.argument("job_id")
@click.option("--yes", is_flag=True, help="Confirm a resubmit that Pixazo will charge again.")
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_retry(svc: Services, job_id: str, yes: bool, as_json: bool) -> None:
    """Resubmit a failed job."""
    _result(actions.retry(svc, job_id, _actor(), confirm_charge=yes), as_json)


@jobs.command("repoll")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_repoll(svc: Services, job_id: str, as_json: bool) -> None:
    """Ask Pixazo for the job's status now."""
    _result(actions.repoll(svc, job_id, _actor()), as_json)


@jobs.command("redeliver")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_redeliver(svc: Services, target: str, as_json: bool) -> None:
    """Redeliver an event (evt_...) or every event of a job (job_...)."""
    if target.startswith("evt_"):
        _result(actions.redeliver(svc, target, _actor()), as_json)
    else:
        _result(actions.redeliver_job(svc, target, _actor()), as_json)


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True)
@with_services
def jobs_cancel(svc: Services, job_id: str, as_json: bool) -> None:
    _result(actions.cancel(svc, job_id, _actor()), as_json)


@cli.group()
def submissions() -> None:
    """Pause or resume every submit to Pixazo."""


@submissions.command("pause")
@click.option("--reason", default="operator", show_default=True)
@with_services
def submissions_pause(svc: Services, reason: str) -> None:
    upstream.pause(svc.redis, reason, by=_actor())
    actions.audit(svc, _actor(), "pause", "submissions", reason)
    click.echo("submissions paused")


@submissions.command("resume")
@with_services
def submissions_resume(svc: Services) -> None:
    upstream.resume(svc.redis, by=_actor())
    actions.audit(svc, _actor(), "resume", "submissions")
    click.echo("submissions resumed")


@submissions.command("status")
@click.option("--json", "as_json", is_flag=True)
@with_services
def submissions_status(svc: Services, as_json: bool) -> None:
    health = upstream.health(svc.redis)
    _emit(health, as_json, "paused" if health["paused"] else "running")


for _command in (sim_command, consumer_command, demo_command):
    cli.add_command(_command)


def main() -> None:
    cli()
