"""``orchestrator worker ping``: a liveness probe for Celery workers, for orchestrators' probes.

It is ``celery -A workers.entry inspect ping`` narrowed to this host: a remote-control ping over
the broker, answered by a worker's main process from its event loop, so a worker whose consumer
is wedged (or gone) does not answer and the probe exits 1, and the platform restarts it.
"""

from __future__ import annotations

import socket
import sys

import click
from celery import Celery
from celery.utils.nodenames import host_format
from flask import current_app
from kombu.exceptions import OperationalError

from ops.cli.base import emit, json_option, with_services
from orchestrator.core import broker
from orchestrator.core.services import Services

DEFAULT_TIMEOUT_SECONDS = 5.0


@click.group()
def worker() -> None:
    """Probe the Celery workers."""


def _answered(celery: Celery, names: list[str], timeout: float) -> list[str]:
    """Node names that answered the ping; all of this host's when no name is given."""
    replies = celery.control.ping(destination=names or None, timeout=timeout)
    nodes = [node for reply in replies for node in reply]
    if names:
        return [node for node in nodes if node in names]
    host = socket.gethostname()
    return [node for node in nodes if node.rpartition("@")[2] == host]


@worker.command("ping")
@click.option(
    "-d",
    "--destination",
    "names",
    multiple=True,
    help="A worker's node name (e.g. worker1@%h; %h is this host); repeat for several. "
    "Default: any worker on this host.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds to wait for the answers.",
)
@json_option
@with_services
def worker_ping(svc: Services, names: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Exit 0 if the worker(s) answer a remote-control ping within the timeout, else 1."""
    wanted = sorted({host_format(name) for name in names})
    celery: Celery = current_app.extensions["celery"]
    try:
        broker.ping(svc.settings.broker_url)  # fail fast: Celery would retry its publish
        answered = sorted(set(_answered(celery, wanted, timeout)))
    except (broker.BrokerUnavailable, OperationalError, OSError) as exc:
        emit(
            {"ok": False, "answered": [], "missing": wanted, "error": "broker unreachable"},
            as_json,
            f"broker unreachable ({type(exc).__name__})",
        )
        sys.exit(1)
    missing = [name for name in wanted if name not in answered]
    ok = bool(answered) and not missing
    if ok:
        text = "\n".join(f"pong from {node}" for node in answered)
    elif missing:
        text = f"no answer from {', '.join(missing)} within {timeout:g} s"
    else:
        text = f"no worker on {socket.gethostname()} answered within {timeout:g} s"
    emit({"ok": ok, "answered": answered, "missing": missing}, as_json, text)
    if not ok:
        sys.exit(1)
