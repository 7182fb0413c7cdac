"""The ``orchestrator`` command (console script ``orchestrator = ops.cli:main``), split by noun.

- :mod:`ops.cli.base`: the top-level group and the commands other packages register in the
  ``orchestrator.commands`` entry-point group, the app context, ``--json`` output, errors and
  exit codes;
- :mod:`ops.cli.clients`, :mod:`ops.cli.jobs`, :mod:`ops.cli.submissions`,
  :mod:`ops.cli.operators`: one group of commands each.

Conventions (README, "CLI"): ``--version``; help on every command and option; ``--json`` on every
product command, errors included; the exit statuses of :class:`~ops.cli.base.ExitCode`.

This package never imports ``devtools``: ``sim``, ``consumer`` and ``demo`` come through the
entry points, and an install without them simply lacks those commands.
"""

from __future__ import annotations

from ops.cli import clients, jobs, operators, submissions
from ops.cli.base import COMMANDS_GROUP, cli
from ops.cli.worker import worker

for _group in (clients.clients, jobs.jobs, submissions.submissions, operators.operators):
    cli.add_command(_group)
cli.add_command(worker)

__all__ = ["COMMANDS_GROUP", "cli", "main"]


def main() -> None:
    cli()
