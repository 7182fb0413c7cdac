"""The due-time sets (``keys.DUE_SETS``) as objects: a sorted set of members scored by the time
(unix seconds) each becomes due, read only up to "now" so that periodic work costs in proportion
to what is due, never to what is stored.

Writes that move a job between states keep its due sets in step inside transition.lua; this
class is for everything else: reading what is due, claiming it for one reconcile batch, pushing
members into the future, dropping members that are gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import redis

from orchestrator.core import lua


class DueSet:
    def __init__(self, r: redis.Redis, key: str) -> None:
        self.redis = r
        self.key = key

    def __repr__(self) -> str:
        return f"DueSet({self.key!r})"

    def due(self, now: float, batch: int) -> list[str]:
        """Up to ``batch`` members due at ``now`` (score <= now), earliest first."""
        members = self.redis.zrangebyscore(self.key, "-inf", now, start=0, num=batch)
        return list(cast(list[str], members))

    def count_due(self, now: float) -> int:
        """How many members are due at ``now`` (ZCOUNT: O(log n), whatever the set's size)."""
        return int(self.redis.zcount(self.key, "-inf", now))

    def claim(self, now: float, batch: int, lease_until: float) -> list[str]:
        """Up to ``batch`` members due at ``now``, earliest first, rescored to ``lease_until`` in
        the same atomic step (due_claim.lua): two batches claiming at once never share a member,
        and the members of a batch that dies come due again when the lease lapses."""
        script = self.redis.register_script(lua.source("due_claim"))
        claimed = script(keys=[self.key], args=[now, batch, lease_until])
        return list(cast(list[str], claimed))

    def schedule(self, member: str, at: float) -> None:
        """Make ``member`` due at ``at``, adding it if it is not in the set."""
        self.redis.zadd(self.key, {member: at})

    def push_back(self, members: Iterable[str], at: float) -> None:
        """Make members already in the set due at ``at``; members no longer there (moved on,
        or removed meanwhile) stay out (ZADD XX)."""
        mapping = dict.fromkeys(members, at)
        if mapping:
            self.redis.zadd(self.key, mapping, xx=True)

    def remove(self, member: str) -> None:
        self.redis.zrem(self.key, member)

    def at(self, member: str) -> float | None:
        """When ``member`` is due, or None if it is not in the set."""
        return self.redis.zscore(self.key, member)
