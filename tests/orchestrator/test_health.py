"""/metrics: the store's gauges (jobs, due, overdue, queue depth) next to the cluster's
counters and histograms."""

from __future__ import annotations

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.core import broker, clock, enqueue, keys, metrics


def scrape(app) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.get_data(as_text=True))
        for s in family.samples
    }


@pytest.fixture
def depths(monkeypatch) -> dict[str, int]:
    seen: dict[str, int] = {name: i for i, name in enumerate(enqueue.ALL_QUEUES)}
    monkeypatch.setattr(broker, "queue_depths", lambda url, queues: {q: seen[q] for q in queues})
    return seen


def test_overdue_counts_only_members_past_their_due_time(app, svc, depths):
    now = clock.now()
    svc.redis.zadd(keys.DUE_POLL, {"job_a": now - 10, "job_b": now - 1, "job_c": now + 60})
    svc.redis.zadd(keys.DUE_DELIVERY, {"evt_a": now + 5})
    got = scrape(app)
    assert got[("orchestrator_overdue", (("set", keys.DUE_POLL),))] == 2
    assert got[("orchestrator_overdue", (("set", keys.DUE_DELIVERY),))] == 0
    assert got[("orchestrator_due", (("set", keys.DUE_POLL),))] == 3


def test_queue_depths_come_from_the_broker(app, depths):
    got = scrape(app)
    for name, n in depths.items():
        assert got[("orchestrator_queue_depth", (("queue", name),))] == n


def test_an_unreachable_broker_leaves_out_queue_depth_not_the_scrape(app, monkeypatch):
    def down(url, queues):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(broker, "queue_depths", down)
    got = scrape(app)
    assert not any(name == "orchestrator_queue_depth" for name, _ in got)
    assert ("orchestrator_submissions_paused", ()) in got


def test_the_scrape_includes_counts_flushed_by_other_processes(app, svc, depths):
    """Another process (a worker) flushed into the same Redis: this web process shows it."""
    metrics.RECORDER.discard()
    worker = metrics.Recorder()
    worker.configure(svc.redis)
    metrics.Counter(metrics.SUBMITS.name, "", metrics.SUBMITS.labels, recorder=worker).inc(
        "pixverse-v6-text-to-video", "accepted"
    )
    worker.flush()
    metrics.SUBMITS.inc("pixverse-v6-text-to-video", "accepted")  # this process, not flushed
    got = scrape(app)
    labels = (("model", "pixverse-v6-text-to-video"), ("outcome", "accepted"))
    assert got[("orchestrator_submits_total", labels)] == 2
