"""Running ``orchestrator`` commands in-process against the unit tests' fakeredis services."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from ops.cli import base, cli


@pytest.fixture
def invoke(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``invoke(*args, stdin=None)``: run a command on the ``app`` fixture's services (fakeredis,
    recorded enqueues) instead of the app the environment describes."""
    monkeypatch.setattr(base, "create_app", lambda: app)

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)

    return run
