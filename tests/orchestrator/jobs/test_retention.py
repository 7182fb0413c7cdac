"""Index trimming removes exactly the jobs old enough to have expired."""

from orchestrator.core import keys
from orchestrator.jobs import retention
from orchestrator.jobs.state import JobState


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


def _mentions(svc, job_id: str) -> list[str]:
    """Keys whose name, string value, hash values or sorted-set members name ``job_id``."""
    r, found = svc.redis, []
    for name in r.scan_iter():
        kind = r.type(name)
        held = {
            "string": lambda n: [r.get(n)],
            "hash": lambda n: [*r.hkeys(n), *r.hvals(n)],
            "zset": lambda n: r.zrange(n, 0, -1),
            "list": lambda n: r.lrange(n, 0, -1),
            "set": lambda n: list(r.smembers(n)),
        }[kind](name)
        if job_id in name or any(job_id in str(v) for v in held):
            found.append(name)
    return found


def test_at_retention_nothing_of_a_finished_job_is_left(svc, client_factory, job_factory):
    """Every key of a finished job expires with the retention (TTL set by the terminal move),
    and the index trim removes its members: after both, no key names the job (issue 12: no
    orphan keys). The event (evt:*) gets its TTL when its delivery settles (outbound's test)."""
    client, _ = client_factory()
    now = 2_000_000_000.0
    job_id = job_factory(
        JobState.COMPLETED, client=client, model="pixverse", now=now, request_id="pv-r1"
    )
    svc.jobs.bind_request("pv-r1", job_id, svc.retention_seconds)
    outbox = {keys.event(e) for e in svc.jobs.event_ids(job_id).values()}
    assert outbox and svc.jobs.job_for_request("pv-r1") == job_id
    for name in _mentions(svc, job_id):
        ttl = svc.redis.ttl(name)
        if svc.redis.type(name) == "zset" or name in outbox:
            continue
        assert 0 < ttl <= svc.retention_seconds, (name, ttl)
        svc.redis.delete(name)  # what Redis does when the TTL runs out
    svc.redis.delete(*outbox)
    svc.redis.zrem(keys.DUE_DELIVERY, *[name.removeprefix("evt:") for name in outbox])
    horizon = svc.retention_seconds + svc.settings.job_deadline_seconds
    retention.trim(svc, now=now + horizon + 1)
    assert _mentions(svc, job_id) == []
    assert svc.jobs.get(job_id) is None and svc.jobs.timeline(job_id) == []
    assert svc.jobs.job_for_request("pv-r1") is None
