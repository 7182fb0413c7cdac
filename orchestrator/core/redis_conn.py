"""Every Redis connection the orchestrator opens from a URL, Sentinel included.

One URL form names a Sentinel-managed primary for the store, the broker and RedBeat's lock:
``redis+sentinel://[[user]:password@]host:port[,host:port...]/<master_name>[/<db>]``. The
store's client asks the sentinels for the current primary on every (re)connection
(``Sentinel.master_for``), so after a failover the next command goes to the promoted replica.
kombu and RedBeat each spell Sentinel their own way; :func:`kombu_broker` and
:func:`redbeat_options` translate our URL into theirs, so the three agree on one setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
REDIS_SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
DEFAULT_SENTINEL_PORT = 26379
# The sentinels answer "who is the primary" in microseconds; a sentinel that does not answer
# within this is skipped for the next one.
SENTINEL_SOCKET_TIMEOUT_SECONDS = 2.0
# RedBeat's commands on the primary (its lock and schedule) give up after this.
REDBEAT_SOCKET_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SentinelTarget:
    """A primary by the name its sentinels know it, and how to log into it."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def is_sentinel(url: str) -> bool:
    return urlsplit(url).scheme == SENTINEL_SCHEME


def _host_port(item: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep:
        host, port = item.strip(), str(DEFAULT_SENTINEL_PORT)
    host = host.strip("[]")  # an IPv6 address in brackets
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad sentinel address {item!r}: expected host:port")
    return host, int(port)


def parse_sentinel(url: str) -> SentinelTarget:
    """``redis+sentinel://[[user]:password@]h:p[,h:p...]/<master_name>[/<db>]``; ValueError if
    malformed (the message never repeats the password)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(h) for h in hosts.split(",") if h.strip())
    if not sentinels:
        raise ValueError("names no sentinel (host:port[,host:port...])")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("must end with /<master_name> or /<master_name>/<db>")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"database must be a number, got {path[1]!r}")
    return SentinelTarget(
        sentinels=sentinels,
        master_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def check_url(url: str) -> None:
    """ValueError unless ``url`` is one of the Redis forms we open (see the module doc)."""
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"must be a {', '.join(s + '://' for s in REDIS_SCHEMES)} URL")
    if scheme == SENTINEL_SCHEME:
        parse_sentinel(url)


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for ``url``; ``options`` are redis-py's (decode_responses, socket_timeout, ...).

    With Sentinel the client's pool asks the sentinels for the primary whenever it connects,
    so a client built before a failover follows it (commands in flight fail with a
    ConnectionError, exactly as they do when a single Redis restarts)."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = parse_sentinel(url)
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_SOCKET_TIMEOUT_SECONDS},
    )
    return sentinel.master_for(
        target.master_name,
        db=target.db,
        username=target.username,
        password=target.password,
        **options,
    )


def kombu_broker(url: str) -> tuple[str, dict[str, Any]]:
    """kombu's spelling of a broker URL: ``(url, extra broker_transport_options)``.

    kombu's ``sentinel://`` transport takes one ``sentinel://host:port`` per sentinel, joined
    by ``;``, with the primary's credentials and db on the first, and the primary's name as
    the ``master_name`` transport option. Other URLs (redis://, amqp://, ...) pass unchanged."""
    if not is_sentinel(url):
        return url, {}
    target = parse_sentinel(url)
    auth = ""
    if target.password is not None or target.username is not None:
        auth = f"{target.username or ''}:{target.password or ''}@"
    hosts = [f"sentinel://{h}:{p}" for h, p in target.sentinels]
    hosts[0] = f"sentinel://{auth}{target.sentinels[0][0]}:{target.sentinels[0][1]}/{target.db}"
    return ";".join(hosts), {"master_name": target.master_name}


def redbeat_options(url: str) -> tuple[str, dict[str, Any]]:
    """RedBeat's spelling: ``(redbeat_redis_url, redbeat_redis_options)``. RedBeat builds its
    own Sentinel client from the options when the URL starts with ``redis-sentinel``."""
    if not is_sentinel(url):
        return url, {}
    target = parse_sentinel(url)
    options: dict[str, Any] = {
        "sentinels": list(target.sentinels),
        "service_name": target.master_name,
        "db": target.db,
        "socket_timeout": REDBEAT_SOCKET_TIMEOUT_SECONDS,
        "sentinel_kwargs": {"socket_timeout": SENTINEL_SOCKET_TIMEOUT_SECONDS},
    }
    if target.password is not None:
        options["password"] = target.password
    if target.username is not None:
        options["username"] = target.username
    return "redis-sentinel://", options
