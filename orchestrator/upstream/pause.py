"""Upstream health as operators see it: the submissions pause (402) and recent answer counts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import redis
import sentry_sdk

from orchestrator.core import clock, keys
from orchestrator.core.services import Services
from orchestrator.jobs.audit import audit

log = logging.getLogger(__name__)
BALANCE_REASON = "insufficient_balance"  # the pause a 402 starts
WINDOW_SECONDS = 3600
_LATENCY_SAMPLES = 200


def pause(r: redis.Redis, reason: str, by: str) -> bool:
    """Pause every submit; True if this call paused (so the alert is raised once)."""
    created = r.hsetnx(keys.SUBMISSIONS_PAUSED, "reason", reason)
    if created:
        r.hset(keys.SUBMISSIONS_PAUSED, mapping={"since": clock.iso(), "by": by})
        log.error("submissions paused: %s (by %s)", reason, by)
        sentry_sdk.capture_message(f"Pixazo submissions paused: {reason}", level="error")
    return bool(created)


def resume(r: redis.Redis, by: str) -> bool:
    removed = r.delete(keys.SUBMISSIONS_PAUSED)
    r.delete(keys.SUBMISSIONS_PROBE)
    if removed:
        log.warning("submissions resumed by %s", by)
    return bool(removed)


def pause_by_operator(svc: Services, actor: str, reason: str) -> bool:
    """An operator's pause (console or CLI): pause, and write the audit entry even when
    submissions were already paused. True if this call paused."""
    changed = pause(svc.redis, reason, by=actor)
    audit(svc, actor, "pause", "submissions", reason)
    return changed


def resume_by_operator(svc: Services, actor: str) -> bool:
    """An operator's resume (console or CLI): resume, and write the audit entry even when
    submissions were not paused. True if this call resumed."""
    changed = resume(svc.redis, by=actor)
    audit(svc, actor, "resume", "submissions")
    return changed


def paused(r: redis.Redis) -> dict[str, str] | None:
    data = cast(dict[str, str], r.hgetall(keys.SUBMISSIONS_PAUSED))
    return dict(data) if data else None


@dataclass(frozen=True)
class Gate:
    """What a submit's go-ahead reads: the pause, and which job may probe it. Read with other
    commands in the caller's pipeline (:func:`queue_gate_read`), so a submit's checks cost one
    round trip."""

    pause: dict[str, str] | None
    probe: str | None

    @classmethod
    def from_replies(cls, replies: list[Any]) -> Gate:
        data, probe = replies
        return cls(dict(data) if data else None, probe)

    def holds(self, job_id: str) -> bool:
        """Paused, and ``job_id`` is not the one job that may probe the pause."""
        return self.pause is not None and self.probe != job_id


GATE_REPLIES = 2  # the replies queue_gate_read adds to a pipeline


def queue_gate_read(pipe: redis.client.Pipeline) -> None:
    pipe.hgetall(keys.SUBMISSIONS_PAUSED)
    pipe.get(keys.SUBMISSIONS_PROBE)


def auto_resumes(pause: dict[str, str] | None) -> bool:
    """A 402 pause ends by itself once a submit is accepted; an operator's pause only by hand."""
    return pause is not None and pause.get("reason") == BALANCE_REASON


def claim_probe(r: redis.Redis, job_id: str, interval: float) -> bool:
    """While paused, one job per interval may try a real submit to see if balance is back."""
    return bool(r.set(keys.SUBMISSIONS_PROBE, job_id, nx=True, px=int(interval * 1000)))


def record_answer(
    pipe: redis.client.Pipeline, http_status: int | None, latency_ms: int, message: str
) -> None:
    """Counters per hour bucket, and the last error, for the console's health panel: queued in
    ``pipe``, which the caller sends with the submit's other records."""
    bucket = int(clock.now() // WINDOW_SECONDS)
    label = str(http_status) if http_status else "network"
    pipe.hincrby(keys.upstream_stats(bucket), label, 1)
    pipe.expire(keys.upstream_stats(bucket), 2 * WINDOW_SECONDS)
    pipe.lpush(keys.UPSTREAM_LATENCY, latency_ms)
    pipe.ltrim(keys.UPSTREAM_LATENCY, 0, _LATENCY_SAMPLES - 1)
    if http_status is None or http_status >= 400:
        pipe.hset(
            keys.UPSTREAM_LAST_ERROR,
            mapping={"at": clock.iso(), "status": label, "message": message[:300]},
        )


def health(r: redis.Redis) -> dict[str, Any]:
    bucket = int(clock.now() // WINDOW_SECONDS)
    counts: dict[str, int] = {}
    for b in (bucket - 1, bucket):
        stats = cast(dict[str, str], r.hgetall(keys.upstream_stats(b)))
        for label, n in stats.items():
            counts[label] = counts.get(label, 0) + int(n)
    total = sum(counts.values())
    latencies = sorted(int(x) for x in r.lrange(keys.UPSTREAM_LATENCY, 0, -1))
    return {
        "paused": paused(r),
        "answers_last_hours": counts,
        "rate_429": (counts.get("429", 0) / total) if total else 0.0,
        "rate_5xx": (sum(v for k, v in counts.items() if k.startswith("5")) / total)
        if total
        else 0.0,
        "last_error": r.hgetall(keys.UPSTREAM_LAST_ERROR) or None,
        "median_submit_latency_ms": latencies[len(latencies) // 2] if latencies else None,
    }
