"""One simulated Pixazo request: its status is derived from the clock, never stored, so a poll and a
callback for the same moment can never disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

QUEUED = "QUEUED"
PROCESSING = "PROCESSING"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
ERROR = "ERROR"
TERMINAL_STATUSES = (COMPLETED, FAILED, ERROR)

FAILED_MESSAGES = (
    "Content moderation failed",
    "Generation failed: the input could not be processed",
)
ERROR_MESSAGE = "Internal error"
MEDIA_FILENAME = "output.mp4"


def iso_millis(ts: float) -> str:
    """``2026-05-22T13:17:32.110Z``: the form Pixazo uses for ``created_at``."""
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def plain_seconds(ts: float) -> str:
    """``2026-05-22 13:19:23``: the form Pixazo uses for ``updated_at``/``completed_at``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class SimRequest:
    request_id: str
    model_id: str
    body: dict[str, Any]
    webhook_url: str | None
    mode: str
    base_url: str
    outcome: str  # the terminal status it will reach
    error_message: str | None
    media_type: str
    created_wall: float
    created_mono: float
    processing_after: float  # seconds after creation
    terminal_after: float
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def terminal_mono(self) -> float:
        return self.created_mono + self.terminal_after

    def status_at(self, elapsed: float) -> str:
        if elapsed >= self.terminal_after:
            return self.outcome
        if elapsed >= self.processing_after:
            return PROCESSING
        return QUEUED

    def snapshot(self, now_mono: float) -> dict[str, Any]:
        """The status-endpoint / callback body as it reads at ``now_mono``."""
        return self.snapshot_after(now_mono - self.created_mono)

    def terminal_snapshot(self) -> dict[str, Any]:
        return self.snapshot_after(self.terminal_after)

    def snapshot_after(self, elapsed: float) -> dict[str, Any]:
        status = self.status_at(elapsed)
        terminal = status in TERMINAL_STATUSES
        if terminal:
            changed_after = self.terminal_after
        elif status == PROCESSING:
            changed_after = self.processing_after
        else:
            changed_after = 0.0
        return {
            "request_id": self.request_id,
            "status": status,
            "model_id": self.model_id,
            "error": self.error_message if terminal else None,
            "output": self._output() if status == COMPLETED else None,
            "created_at": iso_millis(self.created_wall),
            "updated_at": plain_seconds(self.created_wall + changed_after),
            "completed_at": plain_seconds(self.created_wall + changed_after) if terminal else None,
        }

    def media_url(self) -> str:
        return f"{self.base_url}/media/{self.request_id}/{MEDIA_FILENAME}"

    def _output(self) -> dict[str, Any]:
        return {"media_url": [self.media_url()], "media_type": self.media_type}

    def describe(self, now_mono: float) -> dict[str, Any]:
        """The admin view (/_sim/requests): what was asked, and what it is doing."""
        return {
            "request_id": self.request_id,
            "model": self.model_id,
            "webhook_url": self.webhook_url,
            "mode": self.mode,
            "status": self.status_at(now_mono - self.created_mono),
            "outcome": self.outcome,
            "body": self.body,
            "created_at": iso_millis(self.created_wall),
            "callbacks": list(self.callbacks),
        }
