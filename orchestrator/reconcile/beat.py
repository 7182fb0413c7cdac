"""The beat scheduler: RedBeat (one active beat among several, its schedule and lock in Redis),
made to ride out a Redis outage.

Stock RedBeat lets a connection error in ``tick`` escape, and celery beat then exits: a Redis
restart would leave nothing to drain the due-time sets. Here a tick that cannot reach Redis logs,
waits a moment and tries again; losing the lock to another beat meanwhile still ends this one.
"""

from __future__ import annotations

import logging
from typing import Any

from redbeat import RedBeatScheduler
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)
OUTAGE_RETRY_SECONDS = 1.0


class ResilientRedBeatScheduler(RedBeatScheduler):
    def tick(self, *args: Any, **kwargs: Any) -> float:
        try:
            return super().tick(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("beat: Redis unreachable (%s); retrying in %ss", exc, OUTAGE_RETRY_SECONDS)
            return OUTAGE_RETRY_SECONDS
