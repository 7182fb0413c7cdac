"""``orchestrator sim``: one flag per knob, so a test or a demo can set up any fault at start-up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from devtools.sim.engine import DEFAULT_CALLBACK_WORKERS, SimEngine
from devtools.sim.knobs import MAX_SYNC_INTERVAL_SECONDS, SimConfig
from devtools.sim.rules import MODELS
from devtools.sim.server import create_sim_app
from devtools.sim.serving import quiet_request_log, serve_until_signalled

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
BANNER = "pixazo simulator"


class _OptionalNumber(click.ParamType):
    """A number, or "none" for knobs where null means "off" / "unlimited"."""

    def __init__(self, cast: Callable[[str], Any]) -> None:
        self.cast = cast
        self.name = f"{cast.__name__}|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, int | float):
            return value
        if str(value).lower() in ("none", "null", ""):
            return None
        try:
            return self.cast(value)
        except ValueError:
            self.fail(f"{value!r} is not a number or 'none'", param, ctx)


_DEFAULTS = SimConfig()
RATE = click.FloatRange(0, 1)
SECONDS = click.FloatRange(min=0)

# (flag, knob, type, help); knob defaults come from SimConfig so the two cannot drift apart.
_KNOB_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--api-key", "api_key", str, "Ocp-Apim-Subscription-Key the sim accepts."),
    ("--queued-seconds", "queued_seconds", SECONDS, "Time in QUEUED."),
    ("--processing-seconds", "processing_seconds", SECONDS, "Time in PROCESSING."),
    ("--jitter", "jitter", RATE, "Random +/- fraction on each phase."),
    ("--failure-rate", "failure_rate", RATE, "Share of requests ending FAILED."),
    ("--error-rate", "error_rate", RATE, "Share of requests ending ERROR."),
    ("--media-type", "media_type", str, "output.media_type of completed requests."),
    ("--rate-429", "rate_429", RATE, "Share of submits answered 429."),
    ("--retry-after", "retry_after", _OptionalNumber(float), "Retry-After on 429s ('none')."),
    (
        "--retry-after-missing-rate",
        "retry_after_missing_rate",
        RATE,
        "Share of 429s without Retry-After.",
    ),
    ("--rate-500", "rate_500", RATE, "Share of submits answered 500 (not accepted)."),
    (
        "--rate-500-after-accept",
        "rate_500_after_accept",
        RATE,
        "Share of submits accepted (and charged) but answered 500.",
    ),
    ("--rate-402", "rate_402", RATE, "Share of submits answered 402."),
    ("--rate-403", "rate_403", RATE, "Share of submits answered 403."),
    ("--balance", "balance", _OptionalNumber(int), "Submits still accepted ('none': unlimited)."),
    (
        "--submit-delay-seconds",
        "submit_delay_seconds",
        SECONDS,
        "Sleep after accepting a submit, before answering it.",
    ),
    (
        "--sync-interval",
        "sync_interval_seconds",
        click.FloatRange(0, MAX_SYNC_INTERVAL_SECONDS, min_open=True),
        "Seconds between sync-mode progress callbacks.",
    ),
    ("--duplicate-rate", "duplicate_rate", RATE, "Share of callbacks sent 2-3 times."),
    ("--drop-rate", "drop_rate", RATE, "Share of callbacks never sent."),
    ("--callback-delay-seconds", "callback_delay_seconds", SECONDS, "Delay before callbacks."),
    ("--callback-timeout-seconds", "callback_timeout_seconds", SECONDS, "Per-attempt timeout."),
    ("--callback-max-attempts", "callback_max_attempts", click.IntRange(min=1), "Attempts."),
    ("--callback-backoff-seconds", "callback_backoff_seconds", SECONDS, "First retry delay."),
]
_FLAG_KNOBS = [
    ("--allow-http-webhooks", "allow_http_webhooks", "Accept plain-http X-Webhook-URL."),
    ("--out-of-order", "out_of_order", "Send some sync progress callbacks after the terminal."),
]


def _with_knob_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for flag, knob, kind, text in reversed(_KNOB_OPTIONS):
        default = getattr(_DEFAULTS, knob)
        option = click.option(flag, knob, type=kind, default=default, show_default=True, help=text)
        command = option(command)
    for flag, knob, text in reversed(_FLAG_KNOBS):
        command = click.option(flag, knob, is_flag=True, default=False, help=text)(command)
    return command


@click.command("sim")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=int,
    help="Port to listen on (0: any free).",
)
@click.option("--seed", type=int, default=None, help="Seed for every random choice.")
@click.option(
    "--disable-model",
    "disabled_models",
    multiple=True,
    type=click.Choice(sorted(MODELS)),
    help="Answer 400 'Model not found' for this model (repeatable).",
)
@click.option(
    "--callback-workers",
    default=DEFAULT_CALLBACK_WORKERS,
    show_default=True,
    type=click.IntRange(1),
    help="Threads sending callbacks to the orchestrator.",
)
@click.option("--verbose", is_flag=True, help="Log every request to stderr.")
@_with_knob_options
def sim_command(
    host: str,
    port: int,
    seed: int | None,
    disabled_models: tuple[str, ...],
    callback_workers: int,
    verbose: bool,
    **knobs: Any,
) -> None:
    """Run the Pixazo PixVerse simulator (dev and tests only)."""
    try:
        config = SimConfig().updated({**knobs, "disabled_models": list(disabled_models)})
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    quiet_request_log(verbose)
    engine = SimEngine(config, seed=seed, callback_workers=callback_workers)
    app = create_sim_app(engine)
    serve_until_signalled(app, host, port, BANNER, on_stop=engine.close)
