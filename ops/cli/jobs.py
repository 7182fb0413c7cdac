"""``orchestrator jobs``: see jobs and repair them (retry, re-poll, redeliver, cancel)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from ops.cli.base import actor, emit, json_option, not_found, result, with_services
from orchestrator.core.clock import parse_iso
from orchestrator.core.error_codes import ErrorCode
from orchestrator.core.ids import is_id
from orchestrator.core.services import Services
from orchestrator.jobs import actions
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.jobs.store import JOB_PREFIX, JobFilter, index_for
from webhooks.outbound import redeliver

# Any code is accepted (an unknown one matches no job); these are the ones jobs carry.
ERROR_CODES = ", ".join(code.value for code in ErrorCode)


@click.group()
def jobs() -> None:
    """See and repair jobs."""


def _iso_time(value: str, option: str) -> datetime:
    moment = parse_iso(value.strip())
    if moment is None:
        raise click.BadParameter("must be an ISO 8601 time", param_hint=option)
    return moment


def _time_ms(value: str | None, option: str) -> int | None:
    if not value:
        return None
    return int(_iso_time(value, option).timestamp() * 1000)


def _job_id(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    """A job id of the exact shape we make: anything else never reaches a Redis key."""
    if not is_id(value, JOB_PREFIX):
        raise click.BadParameter("not a job id (job_ and 26 characters)")
    return value


def _job_or_event_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or is_id(value, "evt"):
        return value
    return _job_id(ctx, param, value)


@jobs.command("list")
@click.option("--status", type=click.Choice(PUBLIC_STATUSES), default=None, help="Public status.")
@click.option("--client", "client_id", default=None, help="Only this client's jobs.")
@click.option("--model", default=None, help="Only jobs of this model.")
@click.option(
    "--error-code",
    default=None,
    help=f"Only jobs whose error has this code ({ERROR_CODES}).",
)
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
    emit({"data": rows, "next_cursor": page.next_cursor}, as_json, text or "no jobs")


@jobs.command("show")
@click.argument("job_id")
@json_option
@with_services
def jobs_show(svc: Services, job_id: str, as_json: bool) -> None:
    """Show the job JOB_ID (a job id or Pixazo's request_id) with its full timeline."""
    job = svc.jobs.get(job_id)
    if job is None and not job_id.startswith("job_"):
        found = svc.jobs.job_for_request(job_id)
        job = svc.jobs.get(found) if found else None
    if job is None:
        raise not_found("job", job_id)
    job["timeline"] = svc.jobs.timeline(job["id"])
    job["events"] = actions.job_event_ids(svc, job["id"])
    emit(job, as_json, _job_text(job))


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
    """Resubmit the failed job JOB_ID (exit 4 without --yes if Pixazo may have charged it)."""
    result(actions.retry(svc, job_id, actor(), confirm_charge=yes), as_json)


@jobs.command("retry-failed")
@click.option(
    "--error-code",
    default="upstream_error",
    show_default=True,
    help=f"Failed with this code ({ERROR_CODES}).",
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
    outcome = actions.retry_failed(svc, actor(), error_code, client_id, model, confirm_charge=yes)
    result(outcome, as_json)


@jobs.command("repoll")
@click.argument("job_id", callback=_job_id)
@json_option
@with_services
def jobs_repoll(svc: Services, job_id: str, as_json: bool) -> None:
    """Ask Pixazo for the status of the job JOB_ID now."""
    result(actions.repoll(svc, job_id, actor()), as_json)


@jobs.command("redeliver")
@click.argument("target", required=False, callback=_job_or_event_id)
@click.option(
    "--client",
    "client_id",
    default=None,
    help="Every failed delivery of this client (with --since).",
)
@click.option(
    "--since", default=None, help="With --client: dead-lettered at or after this ISO 8601 time."
)
@json_option
@with_services
def jobs_redeliver(
    svc: Services, target: str | None, client_id: str | None, since: str | None, as_json: bool
) -> None:
    """Redeliver TARGET: an event (evt_...) or every event of a job (job_...); or every failed
    delivery of a client since a time (--client CLIENT_ID --since 2026-05-22T13:00:00Z)."""
    if client_id or since:
        if target or not client_id or not since:
            raise click.UsageError("use either TARGET, or --client together with --since")
        when = _iso_time(since, "--since").timestamp()
        result(redeliver.redeliver_client_since(svc, client_id, when, actor()), as_json)
    elif not target:
        raise click.UsageError("give an event id, a job id, or --client and --since")
    elif target.startswith("evt_"):
        result(redeliver.redeliver(svc, target, actor()), as_json)
    else:
        result(redeliver.redeliver_job(svc, target, actor()), as_json)


@jobs.command("cancel")
@click.argument("job_id", callback=_job_id)
@json_option
@with_services
def jobs_cancel(svc: Services, job_id: str, as_json: bool) -> None:
    """Cancel the active job JOB_ID; its client gets a job.canceled event."""
    result(actions.cancel(svc, job_id, actor()), as_json)
