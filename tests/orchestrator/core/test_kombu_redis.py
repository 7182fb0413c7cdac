"""One redis client per kombu channel (orchestrator/core/kombu_redis.py), chosen by Celery's
config for Redis brokers; a Redis restart with it is proven by tests/system/test_chaos_crash.py."""

from __future__ import annotations

from typing import Any

from kombu import Connection

from orchestrator import celery_app
from orchestrator.core import kombu_redis
from tests.helpers import make_settings

SENTINEL = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/3"


class _Channel(kombu_redis._OneClient):
    def __init__(self) -> None:
        self.pool: Any = object()
        self.built = 0

    def _create_client(self) -> object:
        self.built += 1
        return object()


def _client(channel: _Channel, given: Any = None) -> Any:
    with channel.conn_or_acquire(given) as client:
        return client


def test_a_channel_builds_its_client_once_and_reuses_it():
    channel = _Channel()
    first = _client(channel)
    assert _client(channel) is first
    assert channel.built == 1


def test_a_new_pool_gets_a_new_client():
    channel = _Channel()
    first = _client(channel)
    channel.pool = object()  # what kombu's _disconnect_pools + the pool property lead to
    assert _client(channel) is not first
    assert channel.built == 2


def test_a_given_client_is_used_as_kombu_does():
    channel, given = _Channel(), object()
    assert _client(channel, given) is given
    assert channel.built == 0


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
