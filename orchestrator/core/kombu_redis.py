"""kombu's Redis transports, with ``redis.Redis`` clients that are cheap to make.

kombu's Redis channel builds a new ``redis.Redis`` for every publish, ack and queue read
(``Channel._create_client``), and redis-py builds each one's ~200-entry response-callback
table afresh: 60 µs a client, about 4% of the web's, the worker's and the delivery process's CPU
under load. Here each call still gets its own client over the channel's pool, exactly as
kombu's, but made as a shallow copy of one built per pool: it shares the pool, the (read-only)
callback table and the (stateless) event dispatcher, and gets its own lock and no connection
of its own. A pool kombu replaces (after a fork or a disconnect) gets a new prototype, so no
client ever points at a pool kombu has dropped. The channel's pub/sub and BRPOP clients are
made the same way and behave the same.

``celery_app.celery_config`` selects these for ``redis://`` and Sentinel broker URLs.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from kombu.transport import redis as kombu_redis


class _CheapClients:
    """Mixin for a kombu Redis channel: ``_create_client`` copies a prototype per pool."""

    _prototypes: dict[bool, Any]

    def _create_client(self, asynchronous: bool = False) -> Any:
        pool = self.async_pool if asynchronous else self.pool  # type: ignore[attr-defined]
        prototypes = self.__dict__.setdefault("_prototypes", {})
        prototype = prototypes.get(asynchronous)
        if prototype is None or prototype.connection_pool is not pool:
            prototype = super()._create_client(asynchronous)  # type: ignore[misc]
            prototypes[asynchronous] = prototype
        client = copy.copy(prototype)
        client.single_connection_lock = threading.RLock()
        return client


class Channel(_CheapClients, kombu_redis.Channel):
    pass


class SentinelChannel(_CheapClients, kombu_redis.SentinelChannel):
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
