"""What the broker holds, asked through kombu so that any broker Celery runs on answers.

Queue depths come from a passive ``queue_declare``: RabbitMQ answers it with the queue's ready
messages, and kombu's Redis transport with the length of the queue's list, so the console, the
worker watchdog, ``/readyz`` and the metrics read the same number on either broker and never
open the broker URL as something it may not be. A queue nobody has declared yet holds nothing
(RabbitMQ answers 404 and closes the channel; kombu's Redis transport does the same for an
empty list), so it counts as 0.
"""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Connection
from kombu.exceptions import OperationalError

from orchestrator.core import redis_conn

# A broker that does not answer within this is reported down rather than waited on: the
# callers are a web request, a probe and the watchdog's check, none of which may hang.
CONNECT_TIMEOUT_SECONDS = 3.0
_REDIS_TIMEOUTS = {
    "socket_timeout": CONNECT_TIMEOUT_SECONDS,
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
}


class BrokerUnavailable(Exception):
    """The broker could not be reached; the message names the error's type, never the URL
    (it may carry a password)."""


def connection(broker_url: str) -> Connection:
    """A kombu connection (not yet connected) to the broker our URL names, Sentinel included."""
    url, options = redis_conn.kombu_broker(broker_url)
    return Connection(
        url,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        transport_options={**_REDIS_TIMEOUTS, **options},
    )


def _unavailable(exc: BaseException) -> BrokerUnavailable:
    return BrokerUnavailable(f"broker unreachable ({type(exc).__name__})")


def _errors(conn: Connection) -> tuple[type[BaseException], ...]:
    """What a broker that is away raises, whichever transport ``conn`` uses."""
    return (*conn.connection_errors, OperationalError, OSError)


def _connect(conn: Connection) -> None:
    """Connect once, without kombu's retry-after-a-pause (a caller reports, never waits)."""
    conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0)


def depths_on(conn: Connection, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting (not yet handed to a worker) in each queue, on an open connection."""
    try:
        _connect(conn)
        channel = conn.channel()
        depths: dict[str, int] = {}
        try:
            for name in queues:
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True)[1])
                except conn.channel_errors:
                    depths[name] = 0  # never declared, or empty on Redis: nothing waits
                    channel.close()
                    channel = conn.channel()  # RabbitMQ closed the one that got the 404
        finally:
            channel.close()
    except _errors(conn) as exc:
        raise _unavailable(exc) from exc
    return depths


def queue_depths(broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each of ``queues``; BrokerUnavailable if the broker cannot be
    reached. Opens and closes its own connection (callers ask every few seconds at most)."""
    with connection(broker_url) as conn:
        return depths_on(conn, queues)


def ping(broker_url: str) -> None:
    """Return if the broker accepts a connection (and, on Redis, answers PING); else raise
    BrokerUnavailable."""
    with connection(broker_url) as conn:
        try:
            _connect(conn)
            conn.channel().close()  # kombu's Redis transport PINGs when it opens a channel
        except _errors(conn) as exc:
            raise _unavailable(exc) from exc
