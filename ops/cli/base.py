"""What every ``orchestrator`` command shares: the top-level group (with the commands other
packages register in the ``orchestrator.commands`` entry-point group), the app context a command
runs in, ``--json`` output, and errors and exit codes.

Errors: every failure ends as a :class:`CliError` with an error code and an :class:`ExitCode`.
Without ``--json`` it is one line on stderr (``orchestrator: <message>``, never a traceback);
with ``--json`` it is one JSON object in the API's error shape,
``{"error": {"code", "message", "details"}}``, on **stdout**, like every other ``--json``
answer: a script reads stdout and the exit status, whatever happened.

Other packages add commands through the ``orchestrator.commands`` entry-point group (``devtools``
adds ``sim``, ``consumer`` and ``demo``); this package never imports them, so an install without
them simply lacks those commands.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Sequence
from enum import IntEnum
from functools import wraps
from importlib.metadata import EntryPoint, entry_points
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click
from kombu.exceptions import OperationalError as BrokerUnreachable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.app import create_app
from orchestrator.core.config import ConfigError
from orchestrator.core.services import current
from orchestrator.jobs import actions

PROG_NAME = "orchestrator"
DISTRIBUTION = "pixazo-orchestrator"  # setup.cfg's name: --version reads its installed metadata
JSON_FLAG = "--json"
COMMANDS_GROUP = "orchestrator.commands"


def actor() -> str:
    """Who the audit log and the job timelines name for a CLI action."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class ExitCode(IntEnum):
    """The ``orchestrator`` command's exit statuses, one per kind of outcome (README, "CLI")."""

    OK = 0
    ERROR = 1  # anything else: bad configuration, a failed command
    USAGE = 2  # click's: a bad command, argument or option; nothing was read or written
    NOT_FOUND = 3  # no such job, event, client or operator
    REFUSED = 4  # refused as asked: needs --yes, wrong state (not cancelable), a conflict
    UNAVAILABLE = 5  # Redis (or the broker) cannot be reached


EXIT_CODES_HELP = "Exit codes: " + ", ".join(
    f"{code.value} {code.name.lower().replace('_', ' ')}" for code in ExitCode
)


class CliError(click.ClickException):
    """A failure the CLI reports as one line (text) or one API-shaped JSON error (``--json``).
    Its class says the exit status (click makes ``exit_code`` a class attribute)."""

    exit_code = ExitCode.ERROR
    default_code = "error"

    def __init__(
        self, message: str, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.details = details or {}
        self.as_json = False  # set by the top-level group when the command line has --json

    def payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def show(self, file: Any = None) -> None:
        if self.as_json:
            click.echo(json.dumps(self.payload(), default=str), file=file)
        else:
            click.echo(f"{PROG_NAME}: {self.format_message()}", file=file, err=True)


class UsageFailure(CliError):
    """A usage error shown as JSON (without --json, click's own text is kept)."""

    exit_code = ExitCode.USAGE
    default_code = "usage"


class NotFound(CliError):
    exit_code = ExitCode.NOT_FOUND
    default_code = "not_found"


class Refused(CliError):
    exit_code = ExitCode.REFUSED
    default_code = "refused"


class Unavailable(CliError):
    exit_code = ExitCode.UNAVAILABLE
    default_code = "unavailable"


_BY_EXIT_CODE: dict[int, type[CliError]] = {
    cls.exit_code: cls for cls in (CliError, UsageFailure, NotFound, Refused, Unavailable)
}


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"no {kind} {ident}", details={kind: ident})


def redacted_url(url: str) -> str:
    """``url`` without its credentials or query (where a password may also sit): what an
    error may print. Handles the multi-host netloc of ``redis+sentinel://``."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"


def unavailable(service: str, url: str | None, exc: Exception) -> Unavailable:
    """Redis or the broker is down: one line naming it (password-free) and exit 5."""
    shown = redacted_url(url) if url else None
    where = f" at {shown}" if shown else ""
    return Unavailable(
        f"cannot reach {service}{where} ({exc})",
        details={"service": service, "url": shown, "reason": str(exc)},
    )


REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def with_services(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build the app from the environment and run the command inside its context, with the
    process's :class:`~orchestrator.core.services.Services` as its first argument. Redis being
    unreachable is reported here, where the URL the command used is known."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            app = create_app()
        except ConfigError as exc:
            raise CliError(
                f"configuration: {exc}", "configuration", {"variable": exc.variable}
            ) from None
        with app.app_context():
            svc = current()
            try:
                return command(svc, *args, **kwargs)
            except REDIS_DOWN as exc:
                raise unavailable("Redis", svc.settings.redis_url, exc) from None

    return wrapper


json_option = click.option(
    JSON_FLAG,
    "as_json",
    is_flag=True,
    help="Print JSON (one line) instead of text; an error too, as "
    '{"error": {"code", "message", "details"}} on stdout.',
)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    """``data`` as one line of JSON with ``--json``, else ``text`` (or indented JSON if none)."""
    if as_json or text is None:
        click.echo(json.dumps(data, indent=None if as_json else 2, default=str))
    else:
        click.echo(text)


def result(outcome: actions.ActionResult, as_json: bool) -> None:
    """Print an action's outcome, or fail with its refusal (exit 3 if the target does not exist,
    else 4)."""
    if not outcome.ok:
        raise_refusal(outcome)
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


def raise_refusal(outcome: actions.ActionResult) -> NoReturn:
    details = {"status": outcome.status, **(outcome.data or {})}
    error = NotFound if outcome.refusal == actions.Refusal.NOT_FOUND else Refused
    raise error(outcome.message, outcome.refusal, details)


def _json_requested(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--json`` (options end at ``--``). Read from the raw
    arguments so that an error while parsing them is JSON too."""
    end = args.index("--") if "--" in args else len(args)
    return JSON_FLAG in args[:end]


def _as_cli_error(exc: click.ClickException) -> CliError:
    """Any click exception (ours, click's, an extra command's) as a :class:`CliError` with the
    same exit status."""
    if isinstance(exc, CliError):
        return exc
    details = {}
    if isinstance(exc, click.UsageError) and exc.ctx is not None:
        details["command"] = exc.ctx.command_path
    error = _BY_EXIT_CODE.get(exc.exit_code, CliError)
    return error(exc.format_message(), details=details)


def extra_commands() -> dict[str, EntryPoint]:
    """Commands registered by other installed packages, by name."""
    return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}


class OrchestratorGroup(click.Group):
    """The top-level group: its own commands, then those of the ``orchestrator.commands`` group.

    An extra command is imported only when it is run or listed, and one whose module is not
    installed is absent rather than an error (the product runs without ``devtools``). An extra
    command never replaces one of the product's own.

    Every command runs through :meth:`invoke`, which turns failures into :class:`CliError`:
    JSON when the command line has ``--json``, and Redis or the broker being down is one line
    and exit 5, never a traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        as_json = _json_requested(ctx.args)
        try:
            try:
                return super().invoke(ctx)
            except REDIS_DOWN as exc:
                raise unavailable("Redis", None, exc) from None
            except BrokerUnreachable as exc:
                raise unavailable("the broker", None, exc) from None
        except click.UsageError as exc:
            if not as_json:
                raise  # click's own text: the usage line and the hint
            error = _as_cli_error(exc)
            error.as_json = True
            raise error from None
        except click.ClickException as exc:
            error = _as_cli_error(exc)
            error.as_json = as_json
            raise error from None

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


@click.group(cls=OrchestratorGroup, epilog=EXIT_CODES_HELP)
@click.version_option(package_name=DISTRIBUTION, prog_name=PROG_NAME)
def cli() -> None:
    """Pixazo video job orchestrator: operators' commands (every one takes --help; most take
    --json, which also makes errors JSON)."""
