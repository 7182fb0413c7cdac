"""Queue depths from the broker.

PLACEHOLDER for the metrics branch: the broker-portability branch replaces this module with its
kombu version (passive declares, RabbitMQ too); only the signature below is relied on.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis


def queue_depths(broker_url: str, queues: Sequence[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues`` (a Redis broker keeps each queue in a list)."""
    connection = redis.Redis.from_url(broker_url)
    try:
        pipe = connection.pipeline(transaction=False)
        for name in queues:
            pipe.llen(name)
        return {name: int(n) for name, n in zip(queues, pipe.execute(), strict=True)}
    finally:
        connection.close()
