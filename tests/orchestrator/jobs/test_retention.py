"""Index trimming removes exactly the jobs old enough to have expired."""

from orchestrator.core import keys
from orchestrator.jobs import retention


def test_trim_drops_only_members_past_retention_plus_deadline(svc, client_factory, job_factory):
    client, _ = client_factory()
    horizon = svc.retention_seconds + svc.settings.job_deadline_seconds
    now = 2_000_000_000.0
    old = job_factory(client=client, model="pixverse", now=now - horizon - 10)
    young = job_factory(client=client, model="pixverse", now=now - horizon + 10)
    removed = retention.trim(svc, now=now)
    for index in (
        keys.ALL_JOBS,
        keys.status_index("queued"),
        keys.client_index(client.id),
        keys.client_status_index(client.id, "queued"),
        keys.model_index("pixverse"),
    ):
        assert svc.redis.zscore(index, old) is None, index
        assert svc.redis.zscore(index, young) is not None, index
    assert removed == 6  # all, status, model, client, client+status, client+model


def test_trim_drops_dead_letters_older_than_retention(svc):
    now = 2_000_000_000.0
    svc.redis.zadd(
        keys.DEAD_DELIVERIES, {"evt_old": now - svc.retention_seconds - 1, "evt_new": now - 5}
    )
    retention.trim(svc, now=now)
    assert svc.redis.zrange(keys.DEAD_DELIVERIES, 0, -1) == ["evt_new"]
