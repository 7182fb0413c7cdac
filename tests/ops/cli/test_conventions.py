"""The CLI's conventions: ``--version`` from the installed metadata, help on every command,
option and argument of the whole tree (the devtools commands registered through the
``orchestrator.commands`` entry points included), ``--json`` on every product command, and one
documented exit status per kind of outcome."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

import click
from click.testing import CliRunner

from ops.cli import base, cli

PRODUCT_GROUPS = ("clients", "jobs", "operators", "submissions")


def walk(
    command: click.Command, ctx: click.Context, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command under ``command`` as ``orchestrator --help`` finds them: through
    ``list_commands``/``get_command``, so the entry-point commands are visited too."""
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, (*path, name)
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx), (*path, name))


def tree() -> dict[tuple[str, ...], tuple[click.Command, click.Context]]:
    root = click.Context(cli, info_name="orchestrator")
    return {path: (command, ctx) for path, command, ctx in walk(cli, root)}


def test_the_walk_sees_the_product_and_the_devtools_commands():
    paths = tree().keys()
    assert {("sim",), ("demo",), ("consumer",)} <= paths
    assert {("jobs", "retry"), ("clients", "update"), ("operators", "delete")} <= paths
    assert {("submissions", "status"), ("jobs", "retry-failed")} <= paths


def test_every_command_option_and_argument_has_help():
    missing = []
    for path, (command, ctx) in tree().items():
        if not (command.help or "").strip():
            missing.append((path, "command help"))
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append((path, param.opts[0]))
            if isinstance(param, click.Argument) and param.human_readable_name not in (
                command.help or ""
            ):
                # click arguments have no help of their own: the command's text names them.
                missing.append((path, f"argument {param.human_readable_name} not in the help"))
    assert missing == []


def test_every_product_command_takes_json():
    without = [
        path
        for path, (command, ctx) in tree().items()
        if path[:1] and path[0] in PRODUCT_GROUPS and not isinstance(command, click.Group)
        if "as_json" not in {p.name for p in command.get_params(ctx)}
    ]
    assert without == []


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"orchestrator, version {version(base.DISTRIBUTION)}\n"


def test_exit_codes_are_distinct_documented_and_usage_is_clicks():
    codes = [code.value for code in base.ExitCode]
    assert codes == [0, 1, 2, 3, 4, 5]
    assert click.UsageError.exit_code == base.ExitCode.USAGE
    assert click.ClickException.exit_code == base.ExitCode.ERROR
    help_text = CliRunner().invoke(cli, ["--help"]).output
    assert "Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 refused, 5 unavailable" in (
        " ".join(help_text.split())
    )
