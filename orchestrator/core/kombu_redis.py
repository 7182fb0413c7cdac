"""kombu's Redis transports, with one ``redis.Redis`` client per channel instead of per command.

kombu's Redis channel builds a new ``redis.Redis`` (and its ~200-entry response-callback
table) for every publish, queue-size read and unacked bookkeeping call
(``Channel.conn_or_acquire``); that was ~8% of the web's CPU per intake request. The client is
only a facade over the channel's connection pool, and redis-py clients are thread-safe, so one
per channel serves the same connections with the same reconnect and retry behaviour. It is
rebuilt whenever kombu replaces the channel's pool (after a fork or a disconnect), so it never
points at a pool kombu has dropped.

``celery_app.celery_config`` selects these for ``redis://`` and Sentinel broker URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class _OneClient:
    """Mixin for a kombu Redis channel: ``conn_or_acquire`` yields a client kept per pool."""

    _kept_client: Any = None
    _kept_for_pool: Any = None

    # kombu's own signature (a generator context manager); typed loosely as kombu is untyped.
    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool  # type: ignore[attr-defined]
        if self._kept_client is None or self._kept_for_pool is not pool:
            self._kept_client = self._create_client()  # type: ignore[attr-defined]
            self._kept_for_pool = pool
        yield self._kept_client


class Channel(_OneClient, kombu_redis.Channel):
    pass


class SentinelChannel(_OneClient, kombu_redis.SentinelChannel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


# Broker URL scheme -> the transport above that replaces kombu's for it (others: kombu's own).
TRANSPORTS = {
    "redis": f"{__name__}:Transport",
    "sentinel": f"{__name__}:SentinelTransport",
}


def transport_for(kombu_url: str) -> str | None:
    """The ``broker_transport`` for a kombu broker URL (as ``redis_conn.kombu_broker`` spells
    it), or None to let kombu pick by scheme (``rediss://`` keeps kombu's TLS defaults)."""
    scheme = kombu_url.split("://", 1)[0] if "://" in kombu_url else ""
    return TRANSPORTS.get(scheme)
