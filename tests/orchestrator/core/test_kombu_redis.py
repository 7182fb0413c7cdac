"""Cheap per-call redis clients for kombu's Redis channels (orchestrator/core/kombu_redis.py),
chosen by Celery's config for Redis brokers; a Redis restart with them is proven by
tests/system/test_chaos_crash.py."""

from __future__ import annotations

from typing import Any

import fakeredis
import redis
from kombu import Connection

from orchestrator import celery_app
from orchestrator.core import kombu_redis
from tests.helpers import make_settings

SENTINEL = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/3"


class _KombuChannel:
    """What kombu's channel does: a new client over its pool per call."""

    def __init__(self) -> None:
        self.pool: Any = redis.ConnectionPool(host="127.0.0.1", port=1)
        self.async_pool: Any = redis.ConnectionPool(host="127.0.0.1", port=2)
        self.built = 0

    def _create_client(self, asynchronous: bool = False) -> redis.Redis:
        self.built += 1
        return redis.Redis(connection_pool=self.async_pool if asynchronous else self.pool)


class _Channel(kombu_redis._CheapClients, _KombuChannel):
    pass


def test_every_call_gets_its_own_client_over_the_channels_pool():
    channel = _Channel()
    first, second = channel._create_client(), channel._create_client()
    assert first is not second
    assert first.connection_pool is second.connection_pool is channel.pool
    assert first.single_connection_lock is not second.single_connection_lock
    assert first.connection is None and second.connection is None
    assert channel.built == 1  # one prototype, copied
    assert first.response_callbacks is second.response_callbacks


def test_the_async_pool_has_its_own_prototype():
    channel = _Channel()
    blocking, polling = channel._create_client(), channel._create_client(asynchronous=True)
    assert blocking.connection_pool is channel.pool
    assert polling.connection_pool is channel.async_pool
    assert channel.built == 2


def test_a_new_pool_gets_a_new_prototype():
    channel = _Channel()
    channel._create_client()
    channel.pool = redis.ConnectionPool(host="127.0.0.1", port=3)  # kombu replaced it
    assert channel._create_client().connection_pool is channel.pool
    assert channel.built == 2


def test_a_copied_client_runs_commands_like_a_new_one():
    channel = _Channel()
    channel.pool = fakeredis.FakeRedis().connection_pool
    client = channel._create_client()
    client.set("kombu-redis-probe", "1")
    assert channel._create_client().get("kombu-redis-probe") == b"1"
    with client.pipeline() as pipe:
        assert pipe.incr("kombu-redis-probe").execute() == [2]
    assert channel._create_client().lpush("q", "m") == 1


def _transport_cls(settings_url: str) -> type:
    config = celery_app.celery_config(make_settings(broker_url=settings_url))
    connection = Connection(config["broker_url"], transport=config["broker_transport"])
    return connection.get_transport_cls()


def test_celery_uses_it_for_redis_and_sentinel_brokers():
    assert _transport_cls("redis://127.0.0.1:6399/0") is kombu_redis.Transport
    assert _transport_cls(SENTINEL) is kombu_redis.SentinelTransport


def test_other_brokers_keep_kombus_own_transport():
    assert kombu_redis.transport_for("amqp://guest:guest@127.0.0.1:5672/orch") is None
    assert kombu_redis.transport_for("rediss://127.0.0.1:6380/0") is None
