"""Counters and histograms: recorded in memory per process, summed in Redis, rendered once."""

from __future__ import annotations

import os
import time

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core import keys, metrics
from orchestrator.core.metrics import ClusterCollector, Counter, Histogram, Recorder


def render(r, *declared) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The exposition text of ``declared`` as read from ``r``: sample -> value."""
    registry = CollectorRegistry()
    registry.register(ClusterCollector(r, declared))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counts_of_several_processes_add_up_in_one_scrape(fake_redis):
    """Two recorders stand for two processes (web, worker), possibly on two machines."""
    web, worker = Recorder(), Recorder()
    web.configure(fake_redis)
    worker.configure(fake_redis)
    on_web = Counter("t_submits_total", "h", ("model", "outcome"), recorder=web)
    on_worker = Counter("t_submits_total", "h", ("model", "outcome"), recorder=worker)
    for _ in range(3):
        on_web.inc("m1", "accepted")
    on_worker.inc("m1", "accepted", amount=2)
    on_worker.inc("m2", "unknown")
    assert web.flush() and worker.flush()
    samples = render(fake_redis, on_web)
    assert samples[("t_submits_total", (("model", "m1"), ("outcome", "accepted")))] == 5
    assert samples[("t_submits_total", (("model", "m2"), ("outcome", "unknown")))] == 1
    on_web.inc("m1", "accepted")
    web.flush()
    assert (
        render(fake_redis, on_web)[("t_submits_total", (("model", "m1"), ("outcome", "accepted")))]
        == 6
    )


def test_a_histogram_renders_cumulative_buckets_sum_and_count(fake_redis):
    rec = Recorder()
    rec.configure(fake_redis)
    hist = Histogram("t_lag_seconds", "h", (0.5, 1.0, 5.0), ("status",), recorder=rec)
    for value in (0.1, 0.5, 0.7, 3.0, 60.0):  # 0.5 is in le=0.5: bounds are inclusive
        hist.observe(value, "completed")
    rec.flush()
    samples = render(fake_redis, hist)

    def bucket(le: str) -> float:
        return samples[("t_lag_seconds_bucket", (("le", le), ("status", "completed")))]

    assert [bucket(le) for le in ("0.5", "1.0", "5.0", "+Inf")] == [2, 3, 4, 5]
    assert samples[("t_lag_seconds_count", (("status", "completed"),))] == 5
    assert samples[("t_lag_seconds_sum", (("status", "completed"),))] == pytest.approx(64.3)


def test_a_flush_is_one_transaction_of_hincrbyfloat_per_field(fake_redis):
    rec = Recorder()
    rec.configure(fake_redis)
    hist = Histogram("t_d_seconds", "h", (1.0,), recorder=rec)
    hist.observe(0.25)
    hist.observe(0.25)
    assert rec.pending() == {("t_d_seconds", (), "1.0"): 2.0, ("t_d_seconds", (), "sum"): 0.5}
    rec.flush()
    assert rec.pending() == {}
    assert fake_redis.hgetall(keys.metric("t_d_seconds")) == {
        '[[],"1.0"]': "2",
        '[[],"sum"]': "0.5",
    }


def test_a_failed_flush_keeps_the_counts_for_the_next_one():
    server = fakeredis.FakeServer()
    r = fakeredis.FakeRedis(server=server, decode_responses=True)
    rec = Recorder()
    rec.configure(r)
    counter = Counter("t_c_total", "h", ("result",), recorder=rec)
    counter.inc("new")
    server.connected = False
    assert rec.flush() is False
    counter.inc("new")
    server.connected = True
    assert rec.flush() is True
    assert render(r, counter)[("t_c_total", (("result", "new"),))] == 2


def test_without_a_store_nothing_is_lost_and_nothing_raises():
    rec = Recorder()
    Counter("t_x_total", "h", recorder=rec).inc()
    assert rec.flush() is False and rec.pending() == {("t_x_total", (), ""): 1.0}


def test_the_flusher_thread_sends_within_the_interval(fake_redis):
    rec = Recorder(interval=0.05)
    rec.configure(fake_redis)
    Counter("t_bg_total", "h", recorder=rec).inc()
    deadline = time.monotonic() + 5
    while not fake_redis.hgetall(keys.metric("t_bg_total")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake_redis.hgetall(keys.metric("t_bg_total")) == {'[[],""]': "1"}


def test_a_forked_child_starts_without_the_parents_unflushed_counts(fake_redis):
    rec = Recorder()
    rec.configure(fake_redis)
    Counter("t_fork_total", "h", recorder=rec).inc()
    os.register_at_fork(after_in_child=rec.after_fork)
    pid = os.fork()
    if pid == 0:  # the child: its recorder is empty, so it cannot count the parent's again
        os._exit(0 if rec.pending() == {} else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert rec.pending() == {("t_fork_total", (), ""): 1.0}  # the parent keeps its own


def test_declared_metrics_carry_the_contract_names_and_no_id_labels():
    names = {m.name for m in metrics.DECLARED}
    assert names == {
        "orchestrator_http_requests_total",
        "orchestrator_http_request_duration_seconds",
        "orchestrator_submits_total",
        "orchestrator_callbacks_total",
        "orchestrator_deliveries_total",
        "orchestrator_delivery_duration_seconds",
        "orchestrator_job_duration_seconds",
        "orchestrator_event_lag_seconds",
    }
    labels = {label for m in metrics.DECLARED for label in m.labels}
    assert labels == {"route", "method", "status", "model", "outcome", "result"}


def test_unobserved_metrics_still_render_their_type(fake_redis):
    registry = CollectorRegistry()
    registry.register(ClusterCollector(fake_redis))
    text = generate_latest(registry).decode()
    for metric in metrics.DECLARED:
        kind = "counter" if isinstance(metric, Counter) else "histogram"
        assert f"# TYPE {metric.name} {kind}" in text


def test_fields_of_an_older_label_set_are_left_out_not_fatal(fake_redis):
    rec = Recorder()
    rec.configure(fake_redis)
    old = Counter("t_l_total", "h", ("outcome",), recorder=rec)
    new = Counter("t_l_total", "h", ("model", "outcome"), recorder=rec)
    old.inc("accepted")
    new.inc("m1", "accepted")
    rec.flush()
    assert render(fake_redis, new) == {
        ("t_l_total", (("model", "m1"), ("outcome", "accepted"))): 1.0
    }
