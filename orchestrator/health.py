"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from flask import Blueprint, Response, jsonify
from kombu.exceptions import KombuError
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from orchestrator.core import broker, budgets, clock, enqueue, keys, metrics
from orchestrator.core.services import Services, current
from orchestrator.jobs.state import PUBLIC_STATUSES
from orchestrator.upstream import pause

log = logging.getLogger(__name__)
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
    """Gauges read at scrape time from Redis and the broker, so every web process reports the
    same numbers (the counters and histograms are :class:`metrics.ClusterCollector`'s)."""

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
        yield self._overdue()
        depths = self._queue_depths()
        if depths is not None:
            yield depths
        dead = GaugeMetricFamily("orchestrator_dead_deliveries", "Dead-lettered deliveries")
        dead.add_metric([], r.zcard(keys.DEAD_DELIVERIES))
        yield dead
        paused = GaugeMetricFamily("orchestrator_submissions_paused", "1 while paused")
        paused.add_metric([], 1 if pause.paused(r) else 0)
        yield paused
        committed = GaugeMetricFamily(
            "orchestrator_client_committed_usd",
            "Estimated cost committed by each client this calendar month (UTC)",
            labels=["client"],
        )
        for client_id, usd in budgets.committed_by_client(self._svc).items():
            committed.add_metric([client_id], usd)
        yield committed

    def _overdue(self) -> GaugeMetricFamily:
        """Work past its due time: what beat has not caught up with (a backlog alarm)."""
        overdue = GaugeMetricFamily(
            "orchestrator_overdue", "Due-time set members past their due time", labels=["set"]
        )
        now = clock.now()
        pipe = self._svc.redis.pipeline(transaction=False)
        for name in keys.DUE_SETS:
            pipe.zcount(name, "-inf", now)
        for name, n in zip(keys.DUE_SETS, pipe.execute(), strict=True):
            overdue.add_metric([name], n)
        return overdue

    def _queue_depths(self) -> GaugeMetricFamily | None:
        """Messages waiting in each broker queue; left out (not a failed scrape) while the
        broker cannot be read, so the store's numbers still arrive."""
        try:
            depths = broker.queue_depths(self._svc.settings.broker_url, enqueue.ALL_QUEUES)
        except (broker.BrokerUnavailable, KombuError, RedisError, OSError) as exc:
            log.warning("queue depths unavailable: %s", type(exc).__name__)
            return None
        family = GaugeMetricFamily(
            "orchestrator_queue_depth", "Messages waiting in each broker queue", labels=["queue"]
        )
        for queue, n in depths.items():
            family.add_metric([queue], n)
        return family


@bp.get("/metrics", endpoint="metrics")
def metrics_view() -> Response:
    svc = current()
    metrics.RECORDER.flush()  # this process's latest counts; the others' are a second old
    registry = CollectorRegistry()
    registry.register(StoreCollector(svc))
    registry.register(metrics.ClusterCollector(svc.redis))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
