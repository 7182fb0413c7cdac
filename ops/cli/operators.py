"""``orchestrator operators``: the accounts that sign in to the ops console."""

from __future__ import annotations

import sys

import click

from ops.cli.base import Refused, actor, emit, json_option, not_found, with_services
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
@json_option
@with_services
def operators_create(
    svc: Services, name: str, password_stdin: bool, replace: bool, as_json: bool
) -> None:
    """Create the operator NAME; the password is prompted for (or read from stdin), never an
    argument."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        OperatorStore(svc.redis).create(name, password, replace=replace)
    except OperatorError as exc:
        raise Refused(str(exc)) from None
    actions.audit(svc, actor(), "operator_create", name)
    done = "updated" if replace else "created"
    emit({"operator": name, "done": done}, as_json, f"operator {name} {done}")


@operators.command("list")
@json_option
@with_services
def operators_list(svc: Services, as_json: bool) -> None:
    """Every operator's name."""
    names = OperatorStore(svc.redis).names()
    emit(names, as_json, "\n".join(names) or "no operators")


@operators.command("delete")
@click.argument("name")
@json_option
@with_services
def operators_delete(svc: Services, name: str, as_json: bool) -> None:
    """Remove the operator NAME; their open console sessions stop working at once."""
    if not OperatorStore(svc.redis).delete(name):
        raise not_found("operator", name)
    actions.audit(svc, actor(), "operator_delete", name)
    emit({"operator": name, "done": "deleted"}, as_json, f"operator {name} deleted")
