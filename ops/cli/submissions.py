"""``orchestrator submissions``: pause or resume every submit to Pixazo, or ask if they run."""

from __future__ import annotations

import click

from ops.cli.base import actor, emit, json_option, with_services
from orchestrator.core.services import Services
from orchestrator.upstream import pause


@click.group()
def submissions() -> None:
    """Pause or resume every submit to Pixazo."""


@submissions.command("pause")
@click.option("--reason", default="operator", show_default=True, help="Recorded in the audit log.")
@json_option
@with_services
def submissions_pause(svc: Services, reason: str, as_json: bool) -> None:
    """Stop sending submits; jobs stay queued until resumed."""
    paused = pause.pause_by_operator(svc, actor(), reason)
    emit({"paused": True, "changed": paused}, as_json, "submissions paused")


@submissions.command("resume")
@json_option
@with_services
def submissions_resume(svc: Services, as_json: bool) -> None:
    """Send submits again."""
    resumed = pause.resume_by_operator(svc, actor())
    emit({"paused": False, "changed": resumed}, as_json, "submissions resumed")


@submissions.command("status")
@json_option
@with_services
def submissions_status(svc: Services, as_json: bool) -> None:
    """Whether submits are paused, with Pixazo's recent answers and submit latency."""
    health = pause.health(svc.redis)
    emit(health, as_json, "paused" if health["paused"] else "running")
