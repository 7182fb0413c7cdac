"""The simulator's knobs: one flat JSON-shaped config shared by the CLI, tests and /_sim/config."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

from devtools.sim.rules import MODELS

DEFAULT_API_KEY = "sim-key"
MAX_SYNC_INTERVAL_SECONDS = 15.0  # the doc: sync mode caps the queue's polling delay at 15 s


@dataclass
class SimConfig:
    api_key: str = DEFAULT_API_KEY
    # timeline
    queued_seconds: float = 2.0
    processing_seconds: float = 5.0
    jitter: float = 0.1  # +/- this fraction on each phase
    failure_rate: float = 0.0  # -> FAILED
    error_rate: float = 0.0  # -> ERROR
    media_type: str = "video/mp4"
    # submit faults
    rate_429: float = 0.0
    retry_after: float | None = 1.0  # seconds in Retry-After on a 429; None: header absent
    retry_after_missing_rate: float = 0.0  # share of 429s that omit Retry-After anyway
    rate_500: float = 0.0
    rate_500_after_accept: float = 0.0  # accepted (and charged) but answered 500
    rate_402: float = 0.0
    rate_403: float = 0.0
    balance: int | None = None  # further submits that will be accepted; None: unlimited
    disabled_models: list[str] = field(default_factory=list)
    submit_delay_seconds: float = 0.0  # sleep after accepting, before answering
    allow_http_webhooks: bool = False
    # callbacks
    sync_interval_seconds: float = 2.0
    duplicate_rate: float = 0.0
    drop_rate: float = 0.0
    out_of_order: bool = False
    callback_delay_seconds: float = 0.0
    callback_timeout_seconds: float = 5.0
    callback_max_attempts: int = 4
    callback_backoff_seconds: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: object) -> SimConfig:
        """A validated copy; raises ValueError naming the first bad knob so the admin route can
        answer 400 instead of the engine failing later in a scheduler thread."""
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        values = self.to_dict()
        for name, value in changes.items():
            if name not in values:
                raise ValueError(f"unknown knob {name!r}")
            _check(name, value)
            values[name] = list(value) if isinstance(value, list) else value
        return SimConfig(**values)


_RATES = {
    "jitter",
    "failure_rate",
    "error_rate",
    "rate_429",
    "retry_after_missing_rate",
    "rate_500",
    "rate_500_after_accept",
    "rate_402",
    "rate_403",
    "duplicate_rate",
    "drop_rate",
}
_SECONDS = {
    "queued_seconds",
    "processing_seconds",
    "submit_delay_seconds",
    "callback_delay_seconds",
    "callback_timeout_seconds",
    "callback_backoff_seconds",
}
_BOOLS = {"allow_http_webhooks", "out_of_order"}
_STRINGS = {"api_key", "media_type"}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(name: str, value: Any) -> None:
    ok = {
        **dict.fromkeys(_RATES, lambda v: _is_number(v) and 0 <= v <= 1),
        **dict.fromkeys(_SECONDS, lambda v: _is_number(v) and v >= 0),
        **dict.fromkeys(_BOOLS, lambda v: isinstance(v, bool)),
        **dict.fromkeys(_STRINGS, lambda v: isinstance(v, str) and v != ""),
        "retry_after": lambda v: v is None or (_is_number(v) and v >= 0),
        "balance": lambda v: v is None or (_is_int(v) and v >= 0),
        "sync_interval_seconds": lambda v: _is_number(v) and 0 < v <= MAX_SYNC_INTERVAL_SECONDS,
        "callback_max_attempts": lambda v: _is_int(v) and v >= 1,
        "disabled_models": lambda v: isinstance(v, list) and all(m in MODELS for m in v),
    }[name]
    if not ok(value):
        raise ValueError(f"invalid value for {name}: {value!r}")
