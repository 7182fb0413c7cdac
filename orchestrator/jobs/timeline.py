"""A job's timeline on disk: JSON entries appended to a list, and once the job is finished one
packed element at the head standing for every entry before it (issue 12: a finished job keeps
its timeline for the whole retention, and its JSON entries with raw bodies were the biggest
thing it kept). Writers keep appending plain entries; readers go through :func:`decode`.

The packed head is ``z:1:`` and raw deflate from a preset dictionary of timeline text (a third
of the bytes of plain zlib); a head packed before it, ``z:`` and plain zlib, still reads.

Compaction keeps every entry whole (kind, time, status codes, the raw bodies up to
:data:`orchestrator.core.compact.RAW_BODY_CAP`): only the storage changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, cast

import redis

from orchestrator.core import keys, lua
from orchestrator.core.compact import pack_timeline, unpack, unpack_timeline

# A plain entry is a JSON object, so it starts with "{". Base85 has no ":", so no head of the
# older form ("z:" and base85) starts with "z:1:"; the newer prefix is tried first.
PACKED_PREFIX = "z:1:"  # raw deflate from compact.TIMELINE_DICTIONARY_V1
OLD_PACKED_PREFIX = "z:"  # plain zlib: what compaction wrote before the dictionary (read only)
_UNPACK = {PACKED_PREFIX: unpack_timeline, OLD_PACKED_PREFIX: unpack}
MIN_ENTRIES = 2  # fewer plain entries than this: nothing to gain


def decode(elements: Iterable[str]) -> list[dict[str, Any]]:
    """The entries of a timeline as stored: packed heads expanded, in order."""
    entries: list[dict[str, Any]] = []
    for element in elements:
        prefix = _packed_prefix(element)
        if prefix:
            entries.extend(json.loads(_UNPACK[prefix](element.removeprefix(prefix))))
        else:
            entries.append(json.loads(element))
    return entries


def _packed_prefix(element: str) -> str:
    """The prefix of a packed element, "" for a plain entry."""
    return next((p for p in _UNPACK if element.startswith(p)), "")


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
    plain = sum(1 for e in elements if not _packed_prefix(e))
    if plain < MIN_ENTRIES:
        return False
    text = json.dumps(decode(elements), separators=(",", ":"))
    packed = PACKED_PREFIX + pack_timeline(text)
    script = r.register_script(lua.source("timeline_compact"))
    return bool(script(keys=[name], args=[len(elements), elements[0], packed]))
