"""Per-client monthly budgets: what a client has committed to spend, and the guard at intake.

Committed spend is the estimated cost (``catalog.estimate_cost_usd``) of the client's jobs
accepted in a calendar month (UTC), kept in one Redis counter per client and month in integer
micro-dollars (no float drift however many jobs add up). The check against the budget and the
commit are one Lua step (``create_job.lua``), so concurrent intakes near the limit never
overshoot it; a refused job stores nothing. A job records the month and amount it committed
(``budget_period``, ``budget_micros``) so that its release subtracts from that month even after
the month has turned; the release is part of the job's terminal move (``transition.lua``), a
compare-and-set on ``budget_state``, so redelivered tasks never release twice.

A job is released when it ends without Pixazo having charged it: failed or canceled while its
durable ``charge_risk`` is unset (no submit was accepted or of unknown outcome), or failed with
``upstream_error`` (Pixazo's ERROR, documented as not charged). An operator's retry commits the
cost again, in the month of the retry, even past the budget (operators are trusted; the
timeline records it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

import redis
import sentry_sdk

from orchestrator.core import clock, keys
from orchestrator.core.error_codes import ErrorCode

if TYPE_CHECKING:
    from orchestrator.core.services import Services

MICROS_PER_USD = 1_000_000
MAX_BUDGET_USD = Decimal(1_000_000_000)  # far above any real budget; keeps micros exact in Lua
KEEP_MONTHS = 3  # a month's counter expires this many months after the month ends
WARN_FRACTION = Decimal("0.8")  # the console and Sentry warn from this share of the budget
PERIOD_FORMAT = "%Y-%m"

# Client hash fields.
CLIENT_BUDGET = "monthly_budget_micros"  # absent or "": no budget
CLIENT_UNPRICED = "unpriced"  # an UnpricedPolicy value; absent: allow

# Job hash fields: the month and amount the job's current generation committed.
JOB_PERIOD = "budget_period"
JOB_MICROS = "budget_micros"
JOB_STATE = "budget_state"  # COMMITTED, then RELEASED once (the release's compare-and-set)
COMMITTED = "committed"
RELEASED = "released"

# What the release rule reads (handed to transition.lua in its config).
RELEASE_STATES = ("failed", "canceled")
UNCHARGED_ERROR_CODES = (ErrorCode.UPSTREAM_ERROR.value,)


class UnpricedPolicy(StrEnum):
    """What intake does with a job whose model has no published price."""

    ALLOW = "allow"  # accepted, counted as 0
    REFUSE = "refuse"  # 402 budget_exceeded


class BudgetValueError(ValueError):
    """A budget an operator gave that is not a finite amount of at least 0."""


def parse_usd(value: str | float | Decimal) -> Decimal:
    """An operator's budget in USD: finite, >= 0, at most ``MAX_BUDGET_USD``."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BudgetValueError(f"{value!r} is not a number") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET_USD:
        raise BudgetValueError(f"must be a finite amount from 0 to {MAX_BUDGET_USD} USD")
    return amount


def to_micros(usd: float | Decimal) -> int:
    """USD to integer micro-dollars (the estimates have 4 decimals: exact)."""
    if isinstance(usd, float) and not math.isfinite(usd):
        raise BudgetValueError("not a finite amount")
    return int((Decimal(str(usd)) * MICROS_PER_USD).to_integral_value())


def to_usd(micros: int) -> float:
    return micros / MICROS_PER_USD


@dataclass(frozen=True)
class Period:
    """One calendar month in UTC."""

    name: str  # "YYYY-MM"
    start: datetime
    end: datetime  # the first instant of the next month

    @property
    def expire_at(self) -> int:
        """Unix seconds when this month's counter may go: ``KEEP_MONTHS`` after it ended."""
        return int(_add_months(self.start, 1 + KEEP_MONTHS).timestamp())


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def period_of(ts: float | None = None) -> Period:
    moment = datetime.fromtimestamp(clock.now() if ts is None else ts, tz=UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return Period(start.strftime(PERIOD_FORMAT), start, _add_months(start, 1))


@dataclass(frozen=True)
class Commit:
    """What a job commits at intake (or an operator's retry): the Lua scripts' arguments."""

    client_id: str
    period: Period
    micros: int | None  # None: the model has no published price

    @property
    def key(self) -> str:
        return keys.budget_committed(self.client_id, self.period.name)

    def job_fields(self) -> dict[str, str]:
        return {
            JOB_PERIOD: self.period.name,
            JOB_MICROS: str(self.micros or 0),
            JOB_STATE: COMMITTED,
        }


def commit_for(client_id: str, cost_usd: float | None, now: float | None = None) -> Commit:
    micros = None if cost_usd is None else to_micros(cost_usd)
    return Commit(client_id, period_of(now), micros)


@dataclass(frozen=True)
class Refusal:
    """Why intake refused a job (create_job.lua's answer); ``error`` is the 402 it becomes."""

    budget_micros: int | None
    committed_micros: int
    job_micros: int | None
    model: str

    def details(self) -> dict[str, Any]:
        return {
            "budget_usd": None if self.budget_micros is None else to_usd(self.budget_micros),
            "committed_usd": to_usd(self.committed_micros),
            "job_usd": None if self.job_micros is None else to_usd(self.job_micros),
        }

    def message(self) -> str:
        if self.job_micros is None:
            return (
                f"The model {self.model} has no published price, and this client's budget "
                "policy refuses unpriced jobs."
            )
        return (
            "This job's estimated cost would take the client's committed spend for the month "
            "over its monthly budget."
        )


def _int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def refusal(budget: Any, committed: Any, commit: Commit, model: str) -> Refusal:
    """A refusal from create_job.lua's answer (its budget and committed, as Redis gives them).
    Unpriced (2) and over budget (3) read alike: the job's amount tells them apart."""
    return Refusal(_int(budget), _int(committed) or 0, commit.micros, model)


def committed_micros(r: redis.Redis, client_id: str, period: Period | None = None) -> int:
    value = r.get(keys.budget_committed(client_id, (period or period_of()).name))
    return int(cast("str | None", value) or 0)


def status(r: redis.Redis, client_id: str, now: float | None = None) -> dict[str, Any]:
    """The ``budget`` object of ``GET /v1/client`` (and the console's client view)."""
    period = period_of(now)
    raw = cast("list[str | None]", r.hmget(keys.client(client_id), CLIENT_BUDGET, CLIENT_UNPRICED))
    budget = _int(raw[0])
    committed = committed_micros(r, client_id, period)
    return {
        "monthly_budget_usd": None if budget is None else to_usd(budget),
        "committed_usd": to_usd(committed),
        "period": period.name,
        "period_start": clock.iso(period.start.timestamp()),
        "period_end": clock.iso(period.end.timestamp()),
        "unpriced": raw[1] or UnpricedPolicy.ALLOW.value,
    }


def near_limit(budget_micros: int | None, committed: int) -> bool:
    """At or past ``WARN_FRACTION`` of a budget (a budget of 0 is always at its limit)."""
    return budget_micros is not None and committed >= WARN_FRACTION * budget_micros


def warn_if_near(
    r: redis.Redis, client_id: str, budget_micros: int | None, committed: int, period: Period
) -> bool:
    """One Sentry message per client and month once committed spend reaches the warning line;
    the once-ness is a ``SET NX`` in Redis, so every web process agrees."""
    if budget_micros is None or not near_limit(budget_micros, committed):
        return False
    key = keys.budget_warned(client_id, period.name)
    if not r.set(key, clock.iso(), nx=True, exat=period.expire_at):
        return False
    sentry_sdk.capture_message(
        f"client {client_id} has committed {to_usd(committed):.2f} USD of its "
        f"{to_usd(budget_micros):.2f} USD budget for {period.name}",
        level="warning",
    )
    return True


def warn_if_near_now(
    r: redis.Redis, client_id: str, budget_micros: int | None, period: Period | None = None
) -> bool:
    """:func:`warn_if_near` with the committed spend read from Redis (after a retry's commit,
    or an operator's change of the budget)."""
    period = period or period_of()
    committed = committed_micros(r, client_id, period)
    return warn_if_near(r, client_id, budget_micros, committed, period)


def committed_by_client(svc: Services) -> dict[str, float]:
    """Committed spend (USD) of every client this month, for ``/metrics`` (one pipeline)."""
    ids = sorted(cast("set[str]", svc.redis.smembers(keys.CLIENTS)))
    period = period_of()
    pipe = svc.redis.pipeline(transaction=False)
    for client_id in ids:
        pipe.get(keys.budget_committed(client_id, period.name))
    return {c: to_usd(int(v or 0)) for c, v in zip(ids, pipe.execute(), strict=True)}


def release_config() -> dict[str, Any]:
    """The release rule as transition.lua reads it (part of its config)."""
    return {
        "states": {s: True for s in RELEASE_STATES},
        "uncharged_codes": {c: True for c in UNCHARGED_ERROR_CODES},
        "period": JOB_PERIOD,
        "micros": JOB_MICROS,
        "state": JOB_STATE,
        "committed": COMMITTED,
        "released": RELEASED,
    }
