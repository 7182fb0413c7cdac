"""Keep-alive connections to consumers, reused only to the address the SSRF guard pinned.

Every attempt still resolves the consumer's host and checks the address (``pinned_target``);
a connection is then taken from urllib3's pool for exactly (scheme, host, port, address, CA
bundle): a host that now resolves elsewhere gets a new pool, so a kept connection never
carries a request to an address that was not checked for it. Opening a TCP (and TLS)
connection per attempt was the largest single cost of a delivery.

Bounds: ``PER_KEY`` idle connections per key (more may be open at once; the extra ones are
closed when given back), ``MAX_KEYS`` keys in all (least recently used pools are closed), and
``IDLE_SECONDS``: an idle connection older than that is closed instead of reused, and a pool
unused that long is dropped. A connection goes back only after a complete, error-free exchange
(``checkin(..., reusable=True)``); after an error, a timeout or an answer not read to its end it
is closed (``reusable=False``). The certificate check is urllib3's, as for a single connection:
CERT_REQUIRED against the bundle, for the URL's name (SNI and hostname match).
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import certifi
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3._collections import RecentlyUsedContainer
from urllib3.connection import HTTPConnection, HTTPSConnection

from orchestrator.core.urls import Target

PER_KEY = 4  # idle connections kept per (scheme, host, port, address): the endpoint cap
MAX_KEYS = 64  # pools kept in all; the least recently used one is closed beyond that
IDLE_SECONDS = 30.0  # an idle connection (and an unused pool) is let go after this long
_SWEEP_EVERY_SECONDS = IDLE_SECONDS / 2

PoolKey = tuple[str, str, int, str, str]


class _IdleMixin:
    """When the connection was last given back (monotonic seconds)."""

    idle_since: float = 0.0


class _Connection(_IdleMixin, HTTPConnection):
    pass


class _TLSConnection(_IdleMixin, HTTPSConnection):
    pass


class _PoolMixin:
    """The idle bound on top of urllib3's pool: a stale connection is closed, not reused."""

    last_used: float = 0.0

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]  # closes a dropped one
        if conn.sock is not None and time.monotonic() - conn.idle_since > IDLE_SECONDS:
            conn.close()
        return conn

    def _put_conn(self, conn: Any) -> None:
        """urllib3's, without its warning for each connection beyond the pool's size (more
        than ``PER_KEY`` attempts to one address at once): such a one is closed quietly."""
        if conn is not None:
            conn.idle_since = time.monotonic()
        pool = getattr(self, "pool", None)
        if pool is not None:
            try:
                pool.put(conn, block=False)
                return
            except queue.Full:
                pass
        if conn is not None:
            conn.close()


class _Pool(_PoolMixin, HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(_PoolMixin, HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


Pool = _Pool | _TLSPool


def _close(pool: Pool) -> None:
    pool.close()


class Pools:
    """The pools of one process, one per pinned key; thread-safe (the delivery thread pool)."""

    def __init__(self) -> None:
        self._pools: RecentlyUsedContainer[PoolKey, Pool] = RecentlyUsedContainer(
            MAX_KEYS, dispose_func=_close
        )
        self._swept = time.monotonic()

    def checkout(self, target: Target, connect_timeout: float) -> tuple[Pool, HTTPConnection]:
        """A connection for ``target``: a kept one to the same pinned address, or a new one
        (not yet connected); give it back with :meth:`checkin`."""
        self._sweep()
        pool = self._pool(target)
        conn: HTTPConnection = pool._get_conn()
        conn.timeout = connect_timeout
        return pool, conn

    @staticmethod
    def checkin(pool: Pool, conn: HTTPConnection, *, reusable: bool) -> None:
        if not reusable or conn.sock is None:
            conn.close()
            pool._put_conn(None)  # the slot comes back; the next checkout opens a new one
            return
        pool._put_conn(conn)

    def clear(self) -> None:
        """Close every kept connection."""
        self._pools.clear()

    def forget(self) -> None:
        self._pools = RecentlyUsedContainer(MAX_KEYS, dispose_func=_close)

    def __len__(self) -> int:
        return len(self._pools)

    def _pool(self, target: Target) -> Pool:
        ca_certs = certifi.where() if target.scheme == "https" else ""
        key: PoolKey = (target.scheme, target.host, target.port, target.address, ca_certs)
        with self._pools.lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = _new_pool(target, ca_certs)
                self._pools[key] = pool
            pool.last_used = time.monotonic()  # under the lock: a sweep cannot close it now
            return pool

    def _sweep(self) -> None:
        """Drop the pools nobody used for ``IDLE_SECONDS`` (closing their idle connections);
        at most every ``_SWEEP_EVERY_SECONDS``, over at most ``MAX_KEYS`` pools."""
        now = time.monotonic()
        if now - self._swept < _SWEEP_EVERY_SECONDS:
            return
        self._swept = now
        with self._pools.lock:
            for key in list(self._pools.keys()):  # it cannot be iterated itself
                pool = self._pools.get(key)
                if pool is not None and now - pool.last_used > IDLE_SECONDS:
                    del self._pools[key]  # closes it (the container's dispose_func)


def _new_pool(target: Target, ca_certs: str) -> Pool:
    """A pool that connects to the checked address; the name is kept for SNI and the
    certificate (and the Host header, which the caller sets)."""
    if target.scheme == "https":
        return _TLSPool(
            target.address,
            target.port,
            maxsize=PER_KEY,
            block=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return _Pool(target.address, target.port, maxsize=PER_KEY, block=False)


POOLS = Pools()


def _forget_in_child() -> None:
    """A forked child must not share its parent's sockets: it starts with no kept connection
    (dropped without closing: the descriptors are the parent's too)."""
    POOLS.forget()


os.register_at_fork(after_in_child=_forget_in_child)
