"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from orchestrator.core import broker, keys
from orchestrator.core.services import Services, current
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.upstream import pause

bp = Blueprint("health", __name__)
OPERATOR_PAUSE = "an operator"
PIXAZO_PAUSE = "pixazo"  # a 402: resumes by itself when a balance probe succeeds
MAX_REASON_CHARS = 200


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when the store and the broker both answer; a 503 names the one that does not."""
    svc = current()
    details: dict[str, object] = {}
    paused: dict[str, str] | None = None
    try:
        svc.redis.ping()
        paused = pause.paused(svc.redis)
        details["redis"] = "ok"
    except RedisError:
        details["redis"] = "unreachable"
    details["broker"] = _broker_status(svc, store_ok=details["redis"] == "ok")
    if details["redis"] != "ok" or details["broker"] != "ok":
        return jsonify({"status": "unavailable", "details": details}), 503
    details["submissions_paused"] = paused is not None
    if paused:
        details["pause"] = public_pause(paused)
    return jsonify({"status": "ready", "details": details}), 200


def _broker_status(svc: Services, store_ok: bool) -> str:
    """Return "ok" or "unreachable". A broker that is the store's own Redis was just asked."""
    settings = svc.settings
    if settings.broker_url == settings.redis_url:
        return "ok" if store_ok else "unreachable"
    try:
        broker.ping(settings.broker_url)
    except broker.BrokerUnavailable:
        return "unreachable"
    return "ok"


def public_pause(paused: dict[str, str]) -> dict[str, str]:
    """What anyone may read about a pause: why and since when, never which operator (a name
    on an unauthenticated route is half of a sign-in guess)."""
    by = PIXAZO_PAUSE if pause.auto_resumes(paused) else OPERATOR_PAUSE
    return {
        "reason": (paused.get("reason") or "")[:MAX_REASON_CHARS],
        "since": paused.get("since") or "",
        "by": by,
    }


class StoreCollector(Collector):
    """Read at scrape time from Redis, so every web process reports the same numbers."""

    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def collect(self) -> Iterator[GaugeMetricFamily]:
        r = self._svc.redis
        jobs = GaugeMetricFamily("orchestrator_jobs", "Jobs stored, by status", labels=["status"])
        pipe = r.pipeline(transaction=False)
        for status in PUBLIC_STATUSES:
            pipe.zcard(keys.status_index(status))
        for status, n in zip(PUBLIC_STATUSES, pipe.execute(), strict=True):
            jobs.add_metric([status], n)
        yield jobs
        due = GaugeMetricFamily("orchestrator_due", "Members of each due-time set", labels=["set"])
        pipe = r.pipeline(transaction=False)
        for name in keys.DUE_SETS:
            pipe.zcard(name)
        for name, n in zip(keys.DUE_SETS, pipe.execute(), strict=True):
            due.add_metric([name], n)
        yield due
        dead = GaugeMetricFamily("orchestrator_dead_deliveries", "Dead-lettered deliveries")
        dead.add_metric([], r.zcard(keys.DEAD_DELIVERIES))
        yield dead
        paused = GaugeMetricFamily("orchestrator_submissions_paused", "1 while paused")
        paused.add_metric([], 1 if pause.paused(r) else 0)
        yield paused


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry()
    registry.register(StoreCollector(current()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
