"""Which keys a step changed: for checking that a Lua script only touches the keys it is passed
in KEYS (what Redis Cluster and proxies route by)."""

from __future__ import annotations

from typing import Any

import redis


def snapshot(r: redis.Redis) -> dict[str, Any]:
    """Every key's type, contents and whether it has a TTL (fakeredis: tests only)."""
    out: dict[str, Any] = {}
    for key in r.scan_iter(count=1000):
        kind = r.type(key)
        if kind == "hash":
            value: Any = r.hgetall(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(r.smembers(key))
        else:
            value = r.get(key)
        out[key] = (kind, value, r.ttl(key) >= 0)
    return out


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


class KeysSpy:
    """Wraps a registered script, remembering the KEYS of every call."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.keys: list[str] = []

    def __call__(self, keys: list[str] = (), args: list[Any] = (), **kw: Any) -> Any:  # type: ignore[assignment]
        self.keys = list(keys)
        return self.script(keys=keys, args=args, **kw)
