"""A job's timeline on disk: JSON entries appended to a list while the job runs, and once it is
finished one packed text standing for every entry so far, kept as a field of the job hash
(:data:`FIELD`; the list key then goes: issue 12, a finished job keeps its timeline for the
whole retention, and its JSON entries with raw bodies were the biggest thing it kept, the list
key's own overhead next). Entries appended later (a late callback, an operator's action, a
replay's attempts) start a new list with the job's TTL (``lua/append.lua``), which the next
compaction folds in too. Writers append plain entries (:func:`append`, or the Lua scripts);
readers go through :func:`read` / :func:`decode`. A list whose head an earlier version packed
(its first element ``z:1:...``) still reads, and compacts into the field like any other.

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
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from orchestrator.core import keys, lua
from orchestrator.core.compact import pack_timeline, unpack, unpack_timeline

# A plain entry is a JSON object, so it starts with "{". Base85 has no ":", so no head of the
# older form ("z:" and base85) starts with "z:1:"; the newer prefix is tried first.
PACKED_PREFIX = "z:1:"  # raw deflate from compact.TIMELINE_DICTIONARY_V1
OLD_PACKED_PREFIX = "z:"  # plain zlib: what compaction wrote before the dictionary (read only)
_UNPACK = {PACKED_PREFIX: unpack_timeline, OLD_PACKED_PREFIX: unpack}
FIELD = "tl"  # the job hash field holding the packed timeline (PACKED_PREFIX + text)
_SCRIPTS: dict[str, Script] = {}  # registered once per process, run on the caller's client


def _script(r: redis.Redis, name: str) -> Script:
    script = _SCRIPTS.get(name)
    if script is None:
        script = _SCRIPTS.setdefault(name, r.register_script(lua.source(name)))
    return script


def _run(r: redis.Redis, name: str, keys_: list[str], args: list[str | int]) -> object:
    return _script(r, name)(keys=keys_, args=args, client=r)


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
    """The first ``limit`` entries: the packed field's, then the list's (one round trip)."""
    pipe = r.pipeline(transaction=False)
    pipe.hget(keys.job(job_id), FIELD)
    pipe.lrange(keys.timeline(job_id), 0, limit - 1)
    packed, elements = cast("tuple[str | None, list[str]]", pipe.execute())
    return decode([packed, *elements] if packed else elements)[:limit]


def append(r: redis.Redis, job_id: str, entry: str, kept_only: bool = False) -> bool:
    """Append one JSON entry; a new list gets the job's TTL. ``kept_only``: only while the job
    is kept (False, nothing written, once it has expired)."""
    names = [keys.timeline(job_id), keys.job(job_id)]
    return bool(_run(r, "timeline_append", names, [entry, "1" if kept_only else ""]))


def queue_append(pipe: redis.client.Pipeline, r: redis.Redis, job_id: str, entry: str) -> None:
    """:func:`append` queued in ``pipe`` by its script's SHA: a pipeline holding a Script object
    asks Redis whether it has the script (SCRIPT EXISTS) on every execute, a round trip more.
    The caller executes with ``raise_on_error=False`` and hands the reply to :func:`appended`."""
    script = _script(r, "timeline_append")
    pipe.evalsha(script.sha, 2, keys.timeline(job_id), keys.job(job_id), entry, "")


def appended(r: redis.Redis, job_id: str, entry: str, reply: object) -> None:
    """The reply of a :func:`queue_append`: a script Redis did not have (it restarted, or this
    process never ran it) is appended again the usual way; any other error is raised."""
    if isinstance(reply, NoScriptError):
        append(r, job_id, entry)
    elif isinstance(reply, Exception):
        raise reply


def compact(r: redis.Redis, job_id: str) -> bool:
    """Pack the whole timeline into the job hash's :data:`FIELD` and empty the list (True), or
    leave it (False: nothing new to pack, the job is gone, or another compaction got there
    first). No append is lost: one made meanwhile lands after the elements read, which the
    script keeps in the list."""
    name = keys.timeline(job_id)
    pipe = r.pipeline(transaction=False)
    pipe.hget(keys.job(job_id), FIELD)
    pipe.lrange(name, 0, -1)
    packed, elements = cast("tuple[str | None, list[str]]", pipe.execute())
    if not elements:
        return False
    text = json.dumps(decode([packed, *elements] if packed else elements), separators=(",", ":"))
    args: list[str | int] = [
        len(elements),
        elements[0],
        PACKED_PREFIX + pack_timeline(text),
        packed or "",
        FIELD,
    ]
    return bool(_run(r, "timeline_compact", [name, keys.job(job_id)], args))
