"""``orchestrator operators``: the accounts that sign in to the ops console."""

from __future__ import annotations

import sys

import click

from ops.cli.base import actor, emit, json_option, with_services
from ops.operators import OperatorError, OperatorStore
from orchestrator.core.services import Services
from orchestrator.jobs import actions


@click.group()
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
    actions.audit(svc, actor(), "operator_create", name)
    click.echo(f"operator {name} {'updated' if replace else 'created'}")


@operators.command("list")
@json_option
@with_services
def operators_list(svc: Services, as_json: bool) -> None:
    """Every operator's name."""
    names = OperatorStore(svc.redis).names()
    emit(names, as_json, "\n".join(names) or "no operators")


@operators.command("delete")
@click.argument("name")
@with_services
def operators_delete(svc: Services, name: str) -> None:
    """Remove an operator; their open console sessions stop working at once."""
    if not OperatorStore(svc.redis).delete(name):
        raise click.ClickException(f"no operator {name}")
    actions.audit(svc, actor(), "operator_delete", name)
    click.echo(f"operator {name} deleted")
