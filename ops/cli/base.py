"""What every ``orchestrator`` command shares: the top-level group (with the commands other
packages register in the ``orchestrator.commands`` entry-point group), the app context a command
runs in, ``--json`` output, and errors and exit codes.

Exit codes: 0 done; 1 refused or failed (a :class:`click.ClickException`, or an action whose
result is not ok); 2 a usage error (a bad argument or option, before anything is read or written).

Other packages add commands through the ``orchestrator.commands`` entry-point group (``devtools``
adds ``sim``, ``consumer`` and ``demo``); this package never imports them, so an install without
them simply lacks those commands.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from functools import wraps
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from orchestrator.app import create_app
from orchestrator.core.config import ConfigError
from orchestrator.core.services import current
from orchestrator.jobs import actions

COMMANDS_GROUP = "orchestrator.commands"


def actor() -> str:
    """Who the audit log and the job timelines name for a CLI action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def with_services(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and run the command inside its context, with the
    process's :class:`~orchestrator.core.services.Services` as its first argument."""

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


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    """``data`` as one line of JSON with ``--json``, else ``text`` (or indented JSON if none)."""
    if as_json or text is None:
        click.echo(json.dumps(data, indent=None if as_json else 2, default=str))
    else:
        click.echo(text)


def result(outcome: actions.ActionResult, as_json: bool) -> None:
    """Print an action's outcome; exit 1 if it was refused."""
    emit(
        {
            "ok": outcome.ok,
            "message": outcome.message,
            "status": outcome.status,
            **(outcome.data or {}),
        },
        as_json,
        outcome.message,
    )
    if not outcome.ok:
        sys.exit(1)


def extra_commands() -> dict[str, EntryPoint]:
    """Commands registered by other installed packages, by name."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


class OrchestratorGroup(click.Group):
    """The top-level group: its own commands, then those of the ``orchestrator.commands`` group.

    An extra command is imported only when it is run or listed, and one whose module is not
    installed is absent rather than an error (the product runs without ``devtools``). An extra
    command never replaces one of the product's own.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name in extra_commands().keys() - names:
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
        entry = extra_commands().get(cmd_name)
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


@click.group(cls=OrchestratorGroup)
def cli() -> None:
    """Pixazo video job orchestrator."""
