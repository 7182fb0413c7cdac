"""``orchestrator clients``: client services, their API keys, endpoints and webhook secrets."""

from __future__ import annotations

import json
from decimal import Decimal

import click

from ops.cli.base import emit, json_option, not_found, with_services
from orchestrator.core import budgets
from orchestrator.core.budgets import UnpricedPolicy
from orchestrator.core.clients import ALL_EVENT_TYPES, DEFAULT_EVENT_TYPES, OLD_SECRET_KEEP_SECONDS
from orchestrator.core.services import Services
from orchestrator.core.urls import UnsafeUrl, check_consumer_url


@click.group()
def clients() -> None:
    """Client services and their API keys."""


def _checked_url(svc: Services, url: str | None) -> str | None:
    if url:
        try:
            check_consumer_url(url, svc.settings.allow_http)
        except UnsafeUrl as exc:
            raise click.BadParameter(str(exc), param_hint="--callback-url") from None
    return url


def _event_types(value: str) -> tuple[str, ...]:
    types = tuple(t.strip() for t in value.split(",") if t.strip())
    unknown = [t for t in types if t not in ALL_EVENT_TYPES]
    if unknown:
        raise click.BadParameter(f"unknown event types {unknown}", param_hint="--event-types")
    return types


@clients.command("create")
@click.argument("name")
@click.option("--callback-url", default=None, help="Default endpoint for this client's events.")
@click.option(
    "--event-types",
    default=",".join(DEFAULT_EVENT_TYPES),
    show_default=True,
    help="Comma-separated event types this client receives.",
)
@json_option
@with_services
def clients_create(
    svc: Services, name: str, callback_url: str | None, event_types: str, as_json: bool
) -> None:
    """Create a client called NAME; prints its id, API key and webhook secret (shown once) as
    JSON, with or without --json."""
    types = _event_types(event_types)
    client, api_key = svc.clients.create(name, _checked_url(svc, callback_url), types)
    click.echo(
        json.dumps(
            {
                "client_id": client.id,
                "api_key": api_key,
                "webhook_secret": client.webhook_secrets[0],
            }
        )
    )


class _Usd(click.ParamType):
    """An amount of USD: finite, at least 0 (a usage error, exit 2, otherwise)."""

    name = "usd"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        try:
            return budgets.parse_usd(str(value))
        except budgets.BudgetValueError as exc:
            self.fail(str(exc), param, ctx)


@clients.command("update")
@click.argument("client_id")
@click.option("--callback-url", default=None, help="New default endpoint for the client's events.")
@click.option("--event-types", default=None, help="Comma-separated event types (replaces them).")
@click.option("--enable-endpoint", is_flag=True, help="Re-enable an endpoint disabled by a 410.")
@click.option(
    "--monthly-budget-usd",
    type=_Usd(),
    default=None,
    help="Monthly budget in USD (calendar month, UTC): intake refuses a job whose estimated "
    "cost would take the client's committed spend over it (402 budget_exceeded).",
)
@click.option("--no-budget", is_flag=True, help="Remove the client's monthly budget.")
@click.option(
    "--unpriced",
    type=click.Choice([p.value for p in UnpricedPolicy]),
    default=None,
    help="Jobs of a model with no published price: allow (counted as 0 USD, the default for "
    "new clients) or refuse (402 budget_exceeded).",
)
@json_option
@with_services
def clients_update(
    svc: Services,
    client_id: str,
    callback_url: str | None,
    event_types: str | None,
    enable_endpoint: bool,
    monthly_budget_usd: Decimal | None,
    no_budget: bool,
    unpriced: str | None,
    as_json: bool,
) -> None:
    """Change the endpoint of the client CLIENT_ID, the event types it receives, or its monthly
    budget."""
    if monthly_budget_usd is not None and no_budget:
        raise click.UsageError("--monthly-budget-usd and --no-budget exclude each other")
    client = svc.clients.update(
        client_id,
        callback_url=_checked_url(svc, callback_url),
        event_types=_event_types(event_types) if event_types is not None else None,
        endpoint_disabled=False if enable_endpoint else None,
        monthly_budget_usd=monthly_budget_usd,
        no_budget=no_budget,
        unpriced=UnpricedPolicy(unpriced) if unpriced else None,
    )
    if client is None:
        raise not_found("client", client_id)
    budgets.warn_if_near_now(svc.redis, client.id, client.budget_micros)
    budget = budgets.status(svc.redis, client.id)
    emit({**client.public(), "budget": budget}, as_json, f"updated {client.id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option(
    "--keep-old-for",
    default=OLD_SECRET_KEEP_SECONDS,
    show_default=True,
    type=click.IntRange(0),
    help="Seconds the previous secret keeps signing (events carry both signatures).",
)
@json_option
@with_services
def clients_rotate(svc: Services, client_id: str, keep_old_for: int, as_json: bool) -> None:
    """Add a new webhook secret to the client CLIENT_ID; events are signed with both until the
    old one is dropped. Prints JSON, with or without --json."""
    secret = svc.clients.rotate_secret(client_id, keep_old_for)
    if secret is None:
        raise not_found("client", client_id)
    click.echo(json.dumps({"client_id": client_id, "webhook_secret": secret}))


@clients.command("drop-old-secrets")
@click.argument("client_id")
@json_option
@with_services
def clients_drop_old_secrets(svc: Services, client_id: str, as_json: bool) -> None:
    """Stop signing the events of the client CLIENT_ID with its previous secret now (after its
    consumers switched to the new one)."""
    if not svc.clients.drop_old_secrets(client_id):
        raise not_found("client", client_id)
    emit({"client_id": client_id, "secrets": 1}, as_json, f"old secrets dropped for {client_id}")


@clients.command("list")
@json_option
@with_services
def clients_list(svc: Services, as_json: bool) -> None:
    """Every client with its default endpoint."""
    rows = [c.public() for c in (svc.clients.get(i) for i in svc.clients.all_ids()) if c]
    text = "\n".join(f"{r['id']}  {r['name']}  {r['callback_url'] or '-'}" for r in rows)
    emit(rows, as_json, text or "no clients")
