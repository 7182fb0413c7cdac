"""Cluster-wide Prometheus counters and histograms: added up in memory, flushed to Redis.

Every process (web, worker, delivery, beat, on any machine) records into a dictionary under a
lock: no Redis round trip on the hot path. A daemon thread flushes the dictionary every
:data:`FLUSH_INTERVAL_SECONDS` (and at exit) with one pipelined ``HINCRBYFLOAT`` transaction into
one hash per metric (``keys.metric``), so the totals of all processes meet in Redis and one
scrape of any web process reads them all (:class:`ClusterCollector`). A process that dies loses
at most its last interval; a flush that fails keeps its counts for the next one.

prometheus_client's multiprocess mode was not enough: it adds up the processes of one machine
(through files in a shared directory), and our web and worker processes run on several.

The metrics are declared here, once, with their labels. Label values must come from a small
fixed set (routes, methods, status codes, models, outcome words): never ids, URLs or secrets.
"""

from __future__ import annotations

import atexit
import bisect
import json
import logging
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import redis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from orchestrator.core import keys

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
SUM = "sum"  # the part of a histogram's hash field that holds its sum of observations
INF = "+Inf"
# Latency of one HTTP answer or one downstream attempt (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Intake to terminal, and upstream status to consumer 2xx: seconds to hours.
JOB_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0)
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 7200.0)

_Key = tuple[str, tuple[str, ...], str]  # metric name, label values, part


class Recorder:
    """This process's counts since its last flush, and the thread that flushes them."""

    def __init__(self, interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: defaultdict[_Key, float] = defaultdict(float)
        self._redis: redis.Redis | None = None
        self._thread: threading.Thread | None = None
        self._background = True

    def configure(self, connection: redis.Redis, background: bool = True) -> None:
        """Where flushes go; the process's Services call this when they are built.
        ``background=False`` (unit tests): only explicit flushes (a scrape's) write, so a test
        that compares the store before and after a request sees no flush land in between."""
        self._redis = connection
        self._background = background

    def add(self, key: _Key, amount: float) -> None:
        with self._lock:
            self._pending[key] += amount
        if self._thread is None:
            self._start()

    def add_observation(self, bucket: _Key, total: _Key, value: float) -> None:
        """A histogram observation: its bucket and its sum, under one lock."""
        with self._lock:
            pending = self._pending
            pending[bucket] += 1.0
            pending[total] += value
        if self._thread is None:
            self._start()

    def pending(self) -> dict[_Key, float]:
        with self._lock:
            return dict(self._pending)

    def flush(self) -> bool:
        """Send what was recorded since the last flush; on failure keep it for the next one."""
        connection = self._redis
        with self._lock:
            batch, self._pending = self._pending, defaultdict(float)
        if not batch:
            return True
        if connection is None:
            self._restore(batch)
            return False
        pipe = connection.pipeline(transaction=True)  # a scrape sees a histogram whole
        for (name, labels, part), amount in batch.items():
            pipe.hincrbyfloat(keys.metric(name), _field(labels, part), amount)
        try:
            pipe.execute()
        except (RedisError, OSError):
            self._restore(batch)
            return False
        return True

    def discard(self) -> None:
        """Forget the counts not flushed yet (tests start from none)."""
        with self._lock:
            self._pending = defaultdict(float)

    def after_fork(self) -> None:
        """A forked child must not send its parent's counts again, and needs its own thread
        (and a fresh lock: the parent's flusher may have held it at the fork)."""
        self._lock = threading.Lock()
        self._pending = defaultdict(float)
        self._thread = None

    def _restore(self, batch: Mapping[_Key, float]) -> None:
        with self._lock:
            for key, amount in batch.items():
                self._pending[key] += amount

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or not self._background:
                return
            self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            if self._background and not self.flush():
                log.debug("metrics flush deferred: the store is unavailable")


RECORDER = Recorder()
atexit.register(RECORDER.flush)
os.register_at_fork(after_in_child=RECORDER.after_fork)


def _field(labels: tuple[str, ...], part: str) -> str:
    return json.dumps([list(labels), part], separators=(",", ":"))


@dataclass(frozen=True)
class Counter:
    name: str  # ends in _total
    help: str
    labels: tuple[str, ...] = ()
    recorder: Recorder = field(default=RECORDER, repr=False, compare=False)

    def inc(self, *values: str, amount: float = 1.0) -> None:
        self.recorder.add((self.name, values, ""), amount)

    def family(self, stored: Mapping[str, str]) -> Metric:
        family = CounterMetricFamily(self.name, self.help, labels=self.labels)
        for labels, _, value in _decode(stored, len(self.labels)):
            family.add_metric(labels, value)
        return family


@dataclass(frozen=True)
class Histogram:
    name: str
    help: str
    buckets: tuple[float, ...]
    labels: tuple[str, ...] = ()
    recorder: Recorder = field(default=RECORDER, repr=False, compare=False)
    _bounds: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bounds", (*(_bound(b) for b in self.buckets), INF))

    def observe(self, value: float, *values: str) -> None:
        """One observation: its own bucket (non-cumulative, one field) and the sum."""
        bound = self._bounds[bisect.bisect_left(self.buckets, value)]
        self.recorder.add_observation((self.name, values, bound), (self.name, values, SUM), value)

    def family(self, stored: Mapping[str, str]) -> Metric:
        family = HistogramMetricFamily(self.name, self.help, labels=self.labels)
        series: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
        for values, part, value in _decode(stored, len(self.labels)):
            series[tuple(values)][part] = value
        for key, parts in sorted(series.items()):
            running, cumulative = 0.0, []
            for bound in self._bounds:
                running += parts.get(bound, 0.0)
                cumulative.append((bound, running))
            family.add_metric(list(key), cumulative, parts.get(SUM, 0.0))
        return family


def _bound(value: float) -> str:
    """A bucket's ``le`` as Prometheus writes it (``0.5``, ``60.0``)."""
    return repr(float(value)) if math.isfinite(value) else INF


def _decode(stored: Mapping[str, str], arity: int) -> Iterator[tuple[list[str], str, float]]:
    """The stored fields; those of another label set (written before a deploy changed the
    metric's labels) are left out rather than failing the whole scrape."""
    for raw, value in stored.items():
        labels, part = json.loads(raw)
        if len(labels) == arity:
            yield labels, part, float(value)


HTTP_REQUESTS = Counter(
    "orchestrator_http_requests_total",
    "HTTP answers, by route pattern, method and status",
    ("route", "method", "status"),
)
HTTP_DURATION = Histogram(
    "orchestrator_http_request_duration_seconds",
    "Time to answer an HTTP request",
    LATENCY_BUCKETS,
)
SUBMITS = Counter(
    "orchestrator_submits_total",
    "Submits sent to Pixazo, by model and outcome (accepted, rejected, auth, "
    "insufficient_balance, retryable, unknown)",
    ("model", "outcome"),
)
CALLBACKS = Counter(
    "orchestrator_callbacks_total",
    "Pixazo callbacks received: new, duplicate, or refused (bad token, unknown job, bad body)",
    ("result",),
)
DELIVERIES = Counter(
    "orchestrator_deliveries_total",
    "Downstream delivery attempts, by outcome (delivered, retry, dead)",
    ("outcome",),
)
DELIVERY_DURATION = Histogram(
    "orchestrator_delivery_duration_seconds",
    "Duration of one downstream delivery attempt",
    LATENCY_BUCKETS,
)
JOB_DURATION = Histogram(
    "orchestrator_job_duration_seconds",
    "Intake to terminal state, by model and terminal status",
    JOB_BUCKETS,
    ("model", "status"),
)
EVENT_LAG = Histogram(
    "orchestrator_event_lag_seconds",
    "From receiving Pixazo's terminal status to the consumer's 2xx for its event",
    LAG_BUCKETS,
)
DECLARED: tuple[Counter | Histogram, ...] = (
    HTTP_REQUESTS,
    HTTP_DURATION,
    SUBMITS,
    CALLBACKS,
    DELIVERIES,
    DELIVERY_DURATION,
    JOB_DURATION,
    EVENT_LAG,
)


class ClusterCollector(Collector):
    """The declared metrics as summed in Redis over every process: one round trip a scrape."""

    def __init__(
        self, connection: redis.Redis, declared: Sequence[Counter | Histogram] = DECLARED
    ) -> None:
        self._redis = connection
        self._declared = declared

    def collect(self) -> Iterator[Metric]:
        pipe = self._redis.pipeline(transaction=True)
        for metric in self._declared:
            pipe.hgetall(keys.metric(metric.name))
        for metric, stored in zip(self._declared, pipe.execute(), strict=True):
            yield metric.family(stored)
