"""A job's timeline on disk: JSON entries appended to a list, and once the job is finished one
packed element at the head standing for every entry before it (issue 12: a finished job keeps
its timeline for the whole retention, and its JSON entries with raw bodies were the biggest
thing it kept). Writers keep appending plain entries; readers go through :func:`decode`.

Compaction keeps every entry whole (kind, time, status codes, the raw bodies up to
:data:`orchestrator.core.compact.RAW_BODY_CAP`): only the storage changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

import redis

from orchestrator.core import keys, lua
from orchestrator.core.compact import pack, unpack

PACKED_PREFIX = "z:"  # a plain entry is a JSON object, so it starts with "{"
MIN_ENTRIES = 2  # fewer plain entries than this: nothing to gain


def decode(elements: Iterable[str]) -> list[dict[str, Any]]:
    """The entries of a timeline as stored: packed heads expanded, in order."""
    entries: list[dict[str, Any]] = []
    for element in elements:
        if element.startswith(PACKED_PREFIX):
            entries.extend(json.loads(unpack(element.removeprefix(PACKED_PREFIX))))
        else:
            entries.append(json.loads(element))
    return entries


def read(r: redis.Redis, job_id: str, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` entries; a packed head counts as the entries it holds."""
    elements = cast("list[str]", r.lrange(keys.timeline(job_id), 0, limit - 1))
    return decode(elements)[:limit]


def compact(r: redis.Redis, job_id: str) -> bool:
    """Pack the whole timeline into one element (True), or leave it (False: nothing to gain,
    or another compaction got there first). No append is lost: one made meanwhile lands after
    the elements read, which the script keeps."""
    name = keys.timeline(job_id)
    elements = cast("list[str]", r.lrange(name, 0, -1))
    plain = sum(1 for e in elements if not e.startswith(PACKED_PREFIX))
    if plain < MIN_ENTRIES:
        return False
    packed = PACKED_PREFIX + pack(json.dumps(decode(elements), separators=(",", ":")))
    script = r.register_script(lua.source("timeline_compact"))
    return bool(script(keys=[name], args=[len(elements), elements[0], packed]))
