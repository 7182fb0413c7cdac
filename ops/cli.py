"""The ``orchestrator`` command: clients, jobs, submissions and operators.

Other packages add commands through the ``orchestrator.commands`` entry-point group (``devtools``
adds ``sim``, ``consumer`` and ``demo``); this module never imports them, so an install without
them simply lacks those commands."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from ops.operators import OperatorError, OperatorStore
from orchestrator.app import create_app
from orchestrator.core.clients import ALL_EVENT_TYPES, DEFAULT_EVENT_TYPES, OLD_SECRET_KEEP_SECONDS
from orchestrator.core.config import ConfigError
from orchestrator.core.ids import is_id
from orchestrator.core.urls import UnsafeUrl, check_consumer_url
from orchestrator.jobs import actions
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.jobs.store import JOB_PREFIX, JobFilter, index_for
from orchestrator.services import Services, current
from orchestrator.upstream import pause


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


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (one line) instead of text."
)


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


COMMANDS_GROUP = "orchestrator.commands"


def _extra_commands() -> dict[str, EntryPoint]:
    """Commands registered by other installed packages, by name."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


class _Cli(click.Group):
    """The top-level group: its own commands, then those of the ``orchestrator.commands`` group.

    An extra command is imported only when it is run or listed, and one whose module is not
    installed is absent rather than an error (the product runs without ``devtools``).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name in _extra_commands().keys() - names:
            try:
                if self.get_command(ctx, name) is not None:
                    names.add(name)
            except click.ClickException:
                pass  # a broken extra stays out of the listing; running it shows why
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        entry = _extra_commands().get(cmd_name)
        if entry is None:
            return None
        try:
            loaded = entry.load()
        except ImportError as exc:
            missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
            if missing and missing.split(".")[0] == entry.module.split(".")[0]:
                return None  # registered, but the package itself is gone: no such command
            raise click.ClickException(f"command {cmd_name} ({entry.value}): {exc}") from exc
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"{entry.value} (entry point {cmd_name}) is not a command")
        return loaded


@click.group(cls=_Cli)
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
@click.option(
    "--event-types",
    default=",".join(DEFAULT_EVENT_TYPES),
    show_default=True,
    help="Comma-separated event types this client receives.",
)
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
@click.option("--callback-url", default=None, help="New default endpoint for the client's events.")
@click.option("--event-types", default=None, help="Comma-separated event types (replaces them).")
@click.option("--enable-endpoint", is_flag=True, help="Re-enable an endpoint disabled by a 410.")
@json_option
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
@click.option(
    "--keep-old-for",
    default=OLD_SECRET_KEEP_SECONDS,
    show_default=True,
    type=click.IntRange(0),
    help="Seconds the previous secret keeps signing (events carry both signatures).",
)
@with_services
def clients_rotate(svc: Services, client_id: str, keep_old_for: int) -> None:
    """Add a new webhook secret; events are signed with both until the old one is dropped."""
    secret = svc.clients.rotate_secret(client_id, keep_old_for)
    if secret is None:
        raise click.ClickException(f"no client {client_id}")
    click.echo(json.dumps({"client_id": client_id, "webhook_secret": secret}))


@clients.command("drop-old-secrets")
@click.argument("client_id")
@json_option
@with_services
def clients_drop_old_secrets(svc: Services, client_id: str, as_json: bool) -> None:
    """Stop signing with the previous secret now (after consumers switched to the new one)."""
    if not svc.clients.drop_old_secrets(client_id):
        raise click.ClickException(f"no client {client_id}")
    _emit({"client_id": client_id, "secrets": 1}, as_json, f"old secrets dropped for {client_id}")


@clients.command("list")
@json_option
@with_services
def clients_list(svc: Services, as_json: bool) -> None:
    """Every client with its default endpoint."""
    rows = [c.public() for c in (svc.clients.get(i) for i in svc.clients.all_ids()) if c]
    text = "\n".join(f"{r['id']}  {r['name']}  {r['callback_url'] or '-'}" for r in rows)
    _emit(rows, as_json, text or "no clients")


@cli.group()
def jobs() -> None:
    """See and repair jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(PUBLIC_STATUSES), default=None, help="Public status.")
@click.option("--client", "client_id", default=None, help="Only this client's jobs.")
@click.option("--model", default=None, help="Only jobs of this model.")
@click.option("--error-code", default=None, help="Only jobs whose error has this code.")
@click.option("--since", default=None, help="Created at or after this ISO 8601 time (UTC).")
@click.option("--until", default=None, help="Created at or before this ISO 8601 time (UTC).")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 100), help="Jobs per page."
)
@click.option("--cursor", default=None, help="next_cursor of the previous page.")
@json_option
@with_services
def jobs_list(
    svc: Services,
    status: str | None,
    client_id: str | None,
    model: str | None,
    error_code: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List jobs, newest first, by status, client, model, error code and creation time."""
    flt = JobFilter(status=status, client_id=client_id, model=model, error_code=error_code)
    index, keep = index_for(flt, svc.redis)
    try:
        page = svc.jobs.list_range(
            index,
            limit,
            cursor,
            since_ms=_time_ms(since, "--since"),
            until_ms=_time_ms(until, "--until"),
            keep=keep,
        )
    except ValueError:
        raise click.BadParameter("malformed cursor", param_hint="--cursor") from None
    rows = [j for j in (svc.jobs.get(i) for i in page.ids) if j]
    text = "\n".join(
        f"{j['id']}  {j['status']:<10} {j['model']:<28} {j['request_id'] or '-'}" for j in rows
    )
    _emit({"data": rows, "next_cursor": page.next_cursor}, as_json, text or "no jobs")


def _time_ms(value: str | None, option: str) -> int | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("must be an ISO 8601 time", param_hint=option) from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def _job_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A job id of the exact shape we make: anything else never reaches a Redis key."""
    if not is_id(value, JOB_PREFIX):
        raise click.BadParameter("not a job id (job_ and 26 characters)")
    return value


def _job_or_event_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or is_id(value, "evt"):
        return value
    return _job_id(ctx, param, value)


@jobs.command("show")
@click.argument("job_id")
@json_option
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
@click.argument("job_id", callback=_job_id)
@click.option("--yes", is_flag=True, help="Confirm a resubmit that Pixazo will charge again.")
@json_option
@with_services
def jobs_retry(svc: Services, job_id: str, yes: bool, as_json: bool) -> None:
    """Resubmit a failed job."""
    _result(actions.retry(svc, job_id, _actor(), confirm_charge=yes), as_json)


@jobs.command("retry-failed")
@click.option(
    "--error-code", default="upstream_error", show_default=True, help="Failed with this code."
)
@click.option("--client", "client_id", default=None, help="Only this client's jobs.")
@click.option("--model", default=None, help="Only jobs of this model.")
@click.option("--yes", is_flag=True, help="Confirm resubmits that Pixazo will charge again.")
@json_option
@with_services
def jobs_retry_failed(
    svc: Services,
    error_code: str,
    client_id: str | None,
    model: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Resubmit every failed job with an error code (at most 500 per run)."""
    result = actions.retry_failed(svc, _actor(), error_code, client_id, model, confirm_charge=yes)
    _result(result, as_json)


@jobs.command("repoll")
@click.argument("job_id", callback=_job_id)
@json_option
@with_services
def jobs_repoll(svc: Services, job_id: str, as_json: bool) -> None:
    """Ask Pixazo for the job's status now."""
    _result(actions.repoll(svc, job_id, _actor()), as_json)


@jobs.command("redeliver")
@click.argument("target", required=False, callback=_job_or_event_id)
@click.option("--client", "client_id", default=None, help="Every failed delivery of this client")
@click.option("--since", default=None, help="... dead-lettered at or after this ISO 8601 time.")
@json_option
@with_services
def jobs_redeliver(
    svc: Services, target: str | None, client_id: str | None, since: str | None, as_json: bool
) -> None:
    """Redeliver an event (evt_...), every event of a job (job_...), or every failed delivery
    of a client since a time (--client CLIENT_ID --since 2026-05-22T13:00:00Z)."""
    if client_id or since:
        if target or not (client_id and since):
            raise click.UsageError("use either TARGET, or --client together with --since")
        when = _parse_since(since)
        _result(actions.redeliver_client_since(svc, client_id, when, _actor()), as_json)
    elif not target:
        raise click.UsageError("give an event id, a job id, or --client and --since")
    elif target.startswith("evt_"):
        _result(actions.redeliver(svc, target, _actor()), as_json)
    else:
        _result(actions.redeliver_job(svc, target, _actor()), as_json)


def _parse_since(value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("must be an ISO 8601 time", param_hint="--since") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@jobs.command("cancel")
@click.argument("job_id", callback=_job_id)
@json_option
@with_services
def jobs_cancel(svc: Services, job_id: str, as_json: bool) -> None:
    """Cancel an active job; its client gets a job.canceled event."""
    _result(actions.cancel(svc, job_id, _actor()), as_json)


@cli.group()
def submissions() -> None:
    """Pause or resume every submit to Pixazo."""


@submissions.command("pause")
@click.option("--reason", default="operator", show_default=True, help="Recorded in the audit log.")
@json_option
@with_services
def submissions_pause(svc: Services, reason: str, as_json: bool) -> None:
    """Stop sending submits; jobs stay queued until resumed."""
    paused = pause.pause(svc.redis, reason, by=_actor())
    actions.audit(svc, _actor(), "pause", "submissions", reason)
    _emit({"paused": True, "changed": paused}, as_json, "submissions paused")


@submissions.command("resume")
@json_option
@with_services
def submissions_resume(svc: Services, as_json: bool) -> None:
    """Send submits again."""
    resumed = pause.resume(svc.redis, by=_actor())
    actions.audit(svc, _actor(), "resume", "submissions")
    _emit({"paused": False, "changed": resumed}, as_json, "submissions resumed")


@submissions.command("status")
@json_option
@with_services
def submissions_status(svc: Services, as_json: bool) -> None:
    """Whether submits are paused, with Pixazo's recent answers and submit latency."""
    health = pause.health(svc.redis)
    _emit(health, as_json, "paused" if health["paused"] else "running")


@cli.group()
def operators() -> None:
    """Accounts for the ops console."""


@operators.command("create")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--replace", is_flag=True, help="Set a new password for an existing operator.")
@with_services
def operators_create(svc: Services, name: str, password_stdin: bool, replace: bool) -> None:
    """Create an operator; the password is prompted for (or read from stdin), never an argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        OperatorStore(svc.redis).create(name, password, replace=replace)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    actions.audit(svc, _actor(), "operator_create", name)
    click.echo(f"operator {name} {'updated' if replace else 'created'}")


@operators.command("list")
@json_option
@with_services
def operators_list(svc: Services, as_json: bool) -> None:
    """Every operator's name."""
    names = OperatorStore(svc.redis).names()
    _emit(names, as_json, "\n".join(names) or "no operators")


@operators.command("delete")
@click.argument("name")
@with_services
def operators_delete(svc: Services, name: str) -> None:
    """Remove an operator; their open console sessions stop working at once."""
    if not OperatorStore(svc.redis).delete(name):
        raise click.ClickException(f"no operator {name}")
    actions.audit(svc, _actor(), "operator_delete", name)
    click.echo(f"operator {name} deleted")


def main() -> None:
    cli()
