"""The ``orchestrator`` command finds ``sim``, ``consumer`` and ``demo`` through the
``orchestrator.commands`` entry points, never by importing devtools, and lacks them when the
package that registered them is gone."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import EntryPoint

import click
import pytest
from click.testing import CliRunner

from ops import cli as cli_module
from ops.cli import base, clients, jobs


def fake_entry_points(*entries: tuple[str, str]):
    def entry_points(group: str) -> list[EntryPoint]:
        assert group == base.COMMANDS_GROUP
        return [EntryPoint(name, value, group) for name, value in entries]

    return entry_points


def test_devtools_registers_the_dev_commands():
    names = set(base.extra_commands())
    assert {"sim", "consumer", "demo"} <= names
    result = CliRunner().invoke(cli_module.cli, ["--help"])
    assert result.exit_code == 0
    for name in ("sim", "consumer", "demo", "jobs", "clients"):
        assert f"  {name} " in result.output


def test_importing_the_cli_does_not_import_devtools():
    code = "import sys, ops.cli; print(any(m.startswith('devtools') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_command_whose_package_is_not_installed_is_absent(monkeypatch):
    monkeypatch.setattr(
        base, "entry_points", fake_entry_points(("sim", "no_such_devtools.sim:sim_command"))
    )
    result = CliRunner().invoke(cli_module.cli, ["--help"])
    assert result.exit_code == 0
    assert "  sim " not in result.output
    result = CliRunner().invoke(cli_module.cli, ["sim"])
    assert result.exit_code == 2
    assert "No such command 'sim'" in result.output


def test_a_command_with_a_missing_dependency_says_so_when_run(monkeypatch, tmp_path):
    # The package is there but something it needs is not: not listed, explained when run.
    (tmp_path / "brokenplugin.py").write_text("import no_such_dependency_of_it\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(base, "entry_points", fake_entry_points(("broken", "brokenplugin:x")))
    assert "broken" not in CliRunner().invoke(cli_module.cli, ["--help"]).output
    result = CliRunner().invoke(cli_module.cli, ["broken"])
    assert result.exit_code == 1
    assert "command broken (brokenplugin:x): No module named 'no_such_dependency_of_it'" in (
        result.output
    )


@pytest.mark.parametrize("name", ["jobs", "clients"])
def test_an_extra_command_cannot_replace_a_product_command(monkeypatch, name):
    monkeypatch.setattr(
        base, "entry_points", fake_entry_points((name, "devtools.sim.cli:sim_command"))
    )
    product = {"jobs": jobs.jobs, "clients": clients.clients}[name]
    assert cli_module.cli.get_command(None, name) is product


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-22T13:00:00Z", datetime(2026, 5, 22, 13, tzinfo=UTC)),
        (" 2026-05-22T13:00:00Z ", datetime(2026, 5, 22, 13, tzinfo=UTC)),
        ("2026-05-22T13:00:00", datetime(2026, 5, 22, 13, tzinfo=UTC)),  # no offset: UTC
        ("2026-05-22T15:00:00+02:00", datetime(2026, 5, 22, 13, tzinfo=UTC)),
        ("2026-05-22", datetime(2026, 5, 22, tzinfo=UTC)),
    ],
)
def test_cli_times_are_iso_8601(value, expected):
    assert jobs._iso_time(value, "--since") == expected


@pytest.mark.parametrize("value", ["yesterday", "   ", "2026-13-01T00:00:00Z", "1716382800"])
def test_a_time_that_is_not_iso_8601_is_a_usage_error(value):
    with pytest.raises(click.BadParameter, match="ISO 8601"):
        jobs._iso_time(value, "--since")
