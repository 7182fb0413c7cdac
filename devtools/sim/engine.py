"""The simulated Pixazo: submit gate, request records, callback timeline and counters.

HTTP-agnostic on purpose: every decision returns a ``Reply`` so the Flask layer stays a thin
translation and tests can drive the rules without a server. One lock guards all state.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devtools.sim.dispatch import AttemptReport, CallbackSender, Delivery, Scheduler
from devtools.sim.knobs import SimConfig
from devtools.sim.replies import (
    FORBIDDEN_BODY,
    INSUFFICIENT_BALANCE_BODY,
    INTERNAL_ERROR_BODY,
    RATE_LIMITED_BODY,
    UNAUTHORIZED_BODY,
    Reply,
    bad_request,
    model_not_found,
)
from devtools.sim.rules import MODELS, body_problems, problems_message
from devtools.sim.timeline import (
    COMPLETED,
    ERROR,
    ERROR_MESSAGE,
    FAILED,
    FAILED_MESSAGES,
    SimRequest,
)

MODE_TERMINAL = "terminal"
MODE_SYNC = "sync"
WEBHOOK_MODES = (MODE_TERMINAL, MODE_SYNC)
DEFAULT_CALLBACK_WORKERS = 16
FIRST_SYNC_POLL_SECONDS = 0.05  # the queue's first poll comes right after the submit
CROSSING_DELAY_SECONDS = (0.0, 0.05)  # random spread so out-of-order callbacks can cross
LATE_PROGRESS_DELAY_SECONDS = (0.1, 0.4)  # after the terminal one, in out_of_order mode
DUPLICATE_SPACING_SECONDS = 0.05
DEFER_PROGRESS_SHARE = 0.5


@dataclass(frozen=True)
class SubmitAttempt:
    model_id: str
    api_key: str | None
    webhook_url: str | None
    webhook_mode: str | None
    body: Any  # parsed JSON, or None when the body was not JSON
    base_url: str


@dataclass
class SimStats:
    submits_received: int = 0
    submits_accepted: int = 0
    accepted_by_model: Counter = field(default_factory=Counter)
    accepted_by_webhook_url: Counter = field(default_factory=Counter)
    rejected_by_code: Counter = field(default_factory=Counter)
    status_calls: int = 0
    status_calls_by_request: Counter = field(default_factory=Counter)
    callbacks_sent: int = 0  # attempts answered 2xx
    callbacks_failed: int = 0  # attempts answered non-2xx or not answered
    callbacks_given_up: int = 0
    callbacks_dropped: int = 0
    callbacks_duplicated: int = 0  # extra copies scheduled by duplicate_rate
    accepted_then_500: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            name: dict(value) if isinstance(value, Counter) else value
            for name, value in vars(self).items()
        }


class SimEngine:
    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        seed: int | None = None,
        callback_workers: int = DEFAULT_CALLBACK_WORKERS,
    ) -> None:
        self._lock = threading.RLock()
        self._initial_config = config or SimConfig()
        self._config = self._initial_config
        self._rng = random.Random(seed)
        self._requests: dict[str, SimRequest] = {}
        self._stats = SimStats()
        self._generation = 0  # bumped by reset: timers and reports of older generations are void
        self._scheduler = Scheduler()
        self._sender = CallbackSender(self._scheduler, self._on_attempt, callback_workers)

    # --- config and admin ----------------------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        with self._lock:
            return self._config

    def configure(self, changes: object) -> dict[str, Any]:
        """Apply knob changes; raises ValueError for an unknown knob or a bad value."""
        with self._lock:
            self._config = self._config.updated(changes)
            return self._config.to_dict()

    def reset(self, *, config: bool = False) -> None:
        with self._lock:
            self._generation += 1
            self._requests.clear()
            self._stats = SimStats()
            if config:
                self._config = self._initial_config
            self._scheduler.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._stats.to_dict(),
                "requests": len(self._requests),
                "callbacks_pending": self.pending_work(),
            }

    def pending_work(self) -> int:
        """Timers (future callbacks, sync polls, retries) plus attempts in flight: 0 means every
        callback that will ever be sent has been, which lets tests wait instead of sleeping."""
        return self._scheduler.pending() + self._sender.in_flight()

    def list_requests(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            return [record.describe(now) for record in self._requests.values()]

    def get_request(self, request_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._requests.get(request_id)
            return None if record is None else record.describe(time.monotonic())

    def has_media(self, request_id: str) -> bool:
        with self._lock:
            record = self._requests.get(request_id)
            return record is not None and record.snapshot(time.monotonic())["status"] == COMPLETED

    def resend(self, request_id: str) -> Reply:
        """Send the terminal callback again now: duplicates on demand."""
        with self._lock:
            record = self._requests.get(request_id)
            if record is None:
                return Reply(404, {"error": "Not Found", "message": f"no request {request_id}"})
            if record.webhook_url is None:
                return Reply(409, {"error": "Conflict", "message": "request has no webhook"})
            if time.monotonic() < record.terminal_mono:
                return Reply(409, {"error": "Conflict", "message": "request is not terminal yet"})
            self._sender.send(self._delivery(record, record.terminal_snapshot()))
            return Reply(200, {"request_id": request_id, "resent": True})

    def close(self) -> None:
        self._scheduler.close()
        self._sender.close()

    # --- Pixazo API ----------------------------------------------------------------------------

    def submit(self, attempt: SubmitAttempt) -> Reply:
        with self._lock:
            self._stats.submits_received += 1
            reply = self._gate(attempt)
            if reply is None:
                reply = self._accept(attempt)
            if reply.status != 202:
                self._stats.rejected_by_code[str(reply.status)] += 1
            return reply

    def status(self, request_id: str, api_key: str | None) -> Reply:
        with self._lock:
            if api_key != self._config.api_key:
                return Reply(401, UNAUTHORIZED_BODY)
            self._stats.status_calls += 1
            record = self._requests.get(request_id)
            if record is None:
                message = f"Request '{request_id}' not found"
                return Reply(404, {"error": "Not Found", "message": message})
            self._stats.status_calls_by_request[request_id] += 1
            return Reply(200, record.snapshot(time.monotonic()))

    # --- submit gate ---------------------------------------------------------------------------

    def _gate(self, attempt: SubmitAttempt) -> Reply | None:
        """The rejections, in the order a gateway in front of a queue would produce them."""
        cfg = self._config
        if attempt.api_key != cfg.api_key:
            return Reply(401, UNAUTHORIZED_BODY)
        if self._chance(cfg.rate_429):
            return self._rate_limited()
        if self._chance(cfg.rate_403):
            return Reply(403, FORBIDDEN_BODY)
        if attempt.model_id in cfg.disabled_models or attempt.model_id not in MODELS:
            return model_not_found(attempt.model_id)
        problem = self._webhook_problem(attempt)
        if problem is not None:
            return bad_request(problem)
        problems = body_problems(attempt.model_id, attempt.body)
        if problems:
            return bad_request(problems_message(problems))
        if (cfg.balance is not None and cfg.balance <= 0) or self._chance(cfg.rate_402):
            return Reply(402, INSUFFICIENT_BALANCE_BODY)
        if self._chance(cfg.rate_500):
            return Reply(500, INTERNAL_ERROR_BODY)
        return None

    def _rate_limited(self) -> Reply:
        cfg = self._config
        headers = {}
        if cfg.retry_after is not None and not self._chance(cfg.retry_after_missing_rate):
            headers["Retry-After"] = f"{cfg.retry_after:g}"
        return Reply(429, RATE_LIMITED_BODY, headers)

    def _webhook_problem(self, attempt: SubmitAttempt) -> str | None:
        if attempt.webhook_mode is not None and attempt.webhook_mode not in WEBHOOK_MODES:
            return "X-Webhook-Mode must be 'terminal' or 'sync'"
        if attempt.webhook_url is None:
            return None
        parts = urlsplit(attempt.webhook_url)
        schemes = ("https", "http") if self._config.allow_http_webhooks else ("https",)
        if parts.scheme not in schemes or not parts.hostname:
            return "X-Webhook-URL must be a valid HTTPS URL"
        return None

    # --- accepted requests ---------------------------------------------------------------------

    def _accept(self, attempt: SubmitAttempt) -> Reply:
        cfg = self._config
        record = self._new_record(attempt)
        self._requests[record.request_id] = record
        if cfg.balance is not None:
            self._config = cfg.updated({"balance": cfg.balance - 1})
        stats = self._stats
        stats.submits_accepted += 1
        stats.accepted_by_model[record.model_id] += 1
        if record.webhook_url is not None:
            stats.accepted_by_webhook_url[record.webhook_url] += 1
            self._schedule_callbacks(record)
        if self._chance(cfg.rate_500_after_accept):
            stats.accepted_then_500 += 1
            return Reply(500, INTERNAL_ERROR_BODY, delay_seconds=cfg.submit_delay_seconds)
        body = {
            "request_id": record.request_id,
            "status": "QUEUED",
            "polling_url": f"{record.base_url}/v2/requests/status/{record.request_id}",
        }
        return Reply(202, body, delay_seconds=cfg.submit_delay_seconds)

    def _new_record(self, attempt: SubmitAttempt) -> SimRequest:
        cfg = self._config
        queued = self._jittered(cfg.queued_seconds)
        processing = self._jittered(cfg.processing_seconds)
        outcome, error_message = self._draw_outcome()
        request_uuid = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        return SimRequest(
            request_id=f"{attempt.model_id}_{request_uuid}",
            model_id=attempt.model_id,
            body=attempt.body,
            webhook_url=attempt.webhook_url,
            mode=attempt.webhook_mode or MODE_TERMINAL,
            base_url=attempt.base_url.rstrip("/"),
            outcome=outcome,
            error_message=error_message,
            media_type=cfg.media_type,
            created_wall=time.time(),
            created_mono=time.monotonic(),
            processing_after=queued,
            terminal_after=queued + processing,
        )

    def _draw_outcome(self) -> tuple[str, str | None]:
        cfg = self._config
        draw = self._rng.random()
        if draw < cfg.failure_rate:
            return FAILED, self._rng.choice(FAILED_MESSAGES)
        if draw < cfg.failure_rate + cfg.error_rate:
            return ERROR, ERROR_MESSAGE
        return COMPLETED, None

    # --- callback timeline ---------------------------------------------------------------------

    def _schedule_callbacks(self, record: SimRequest) -> None:
        generation = self._generation
        terminal_due = record.terminal_mono + self._config.callback_delay_seconds
        if self._config.out_of_order:
            terminal_due += self._rng.uniform(*CROSSING_DELAY_SECONDS)
        rid = record.request_id
        self._scheduler.call_at(terminal_due, lambda: self._emit_terminal(generation, rid))
        if record.mode == MODE_SYNC:
            first_poll = record.created_mono + FIRST_SYNC_POLL_SECONDS
            self._scheduler.call_at(first_poll, lambda: self._sync_poll(generation, rid))

    def _sync_poll(self, generation: int, request_id: str) -> None:
        """One cycle of the provider's queue poll: a progress callback while not terminal."""
        with self._lock:
            record = self._live_record(generation, request_id)
            if record is None:
                return
            now = time.monotonic()
            if now >= record.terminal_mono:
                return  # the terminal callback is scheduled on its own
            cfg = self._config
            next_poll = now + cfg.sync_interval_seconds
            if next_poll < record.terminal_mono:
                self._scheduler.call_at(next_poll, lambda: self._sync_poll(generation, request_id))
            due = now + cfg.callback_delay_seconds
            is_last = next_poll >= record.terminal_mono
            if cfg.out_of_order and (is_last or self._chance(DEFER_PROGRESS_SHARE)):
                late = self._rng.uniform(*LATE_PROGRESS_DELAY_SECONDS)
                due = record.terminal_mono + cfg.callback_delay_seconds + late
            self._emit(record, record.snapshot(now), due - now)

    def _emit_terminal(self, generation: int, request_id: str) -> None:
        with self._lock:
            record = self._live_record(generation, request_id)
            if record is not None:
                self._emit(record, record.terminal_snapshot(), 0.0)

    def _emit(self, record: SimRequest, payload: dict[str, Any], delay: float) -> None:
        """Apply drop and duplicate knobs to one logical callback; caller holds the lock."""
        if self._chance(self._config.drop_rate):
            self._stats.callbacks_dropped += 1
            record.callbacks.append({"status": payload["status"], "dropped": True})
            return
        copies = 1
        if self._chance(self._config.duplicate_rate):
            copies += self._rng.choice((1, 2))
            self._stats.callbacks_duplicated += copies - 1
        delivery = self._delivery(record, payload)
        for copy in range(copies):
            self._sender.send(delivery, delay + copy * DUPLICATE_SPACING_SECONDS)

    def _delivery(self, record: SimRequest, payload: dict[str, Any]) -> Delivery:
        cfg = self._config
        return Delivery(
            url=record.webhook_url or "",
            payload=payload,
            max_attempts=cfg.callback_max_attempts,
            backoff_seconds=cfg.callback_backoff_seconds,
            timeout_seconds=cfg.callback_timeout_seconds,
            tag=(self._generation, record.request_id),
        )

    def _on_attempt(self, report: AttemptReport) -> None:
        generation, request_id = report.delivery.tag
        with self._lock:
            record = self._live_record(generation, request_id)
            if record is None:
                return
            if report.ok:
                self._stats.callbacks_sent += 1
            else:
                self._stats.callbacks_failed += 1
                self._stats.callbacks_given_up += 0 if report.will_retry else 1
            record.callbacks.append(
                {
                    "status": report.delivery.payload["status"],
                    "attempt": report.attempt,
                    "http_status": report.http_status,
                    "error": report.error,
                }
            )

    # --- helpers -------------------------------------------------------------------------------

    def _live_record(self, generation: int, request_id: str) -> SimRequest | None:
        if generation != self._generation:
            return None
        return self._requests.get(request_id)

    def _chance(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _jittered(self, seconds: float) -> float:
        jitter = self._config.jitter
        return max(0.0, seconds * (1 + self._rng.uniform(-jitter, jitter)))
