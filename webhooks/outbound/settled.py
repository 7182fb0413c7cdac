"""What a settled event keeps for its retention: the ``data`` it was signed with, packed small.

A pending event holds the whole job hash as its snapshot (written by the state machine with
the transition). Once it settles, only what a replay needs is kept: the rendered ``data`` (so a
replay signs the same content, same id and data, whatever the job hash holds by then) and the
job's own callback_url (where a replay goes). They are packed with raw deflate primed with a
fixed dictionary of the job object's usual text (field names, statuses, prefixes): a usual job
object packs to under half of what zlib alone leaves. Then base85 (a ``str`` for clients that
decode), cut into ``d0``, ``d1``... fields of at most 64 characters, so that the hash stays a
listpack on a default Redis (``hash-max-listpack-value``).

Events packed by earlier versions (``snapshot_z0``... with the whole job hash) still read, and
render the same body.

A settled event of a job that can never change again (completed or canceled: no move leaves
those states, ``state.ALLOWED``) keeps no copy at all (issue 12: it was most of the event's
bytes, and the job hash holds the same fields): a replay renders ``data`` from the job hash,
which is the object the event was made from (:data:`FROM_JOB`). A failed job's event keeps its
copy, since an operator's retry rewrites the job.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
import zlib
from collections.abc import Mapping

from orchestrator.core.records import Event
from orchestrator.jobs.state import ALLOWED, EVENT_FOR_STATE, TERMINAL
from orchestrator.jobs.store import render

# The snapshot key standing for the sent ``data`` (its JSON); no job field has this name.
SIGNED_DATA = "_data"
DATA_PREFIX = "d"  # d0, d1...: the packed chunks. A new dictionary needs a new prefix.
CHUNK = 64  # characters per chunk: Redis's default hash-max-listpack-value
# Event types of final states no move leaves: their settled events render data from the job.
FROM_JOB = frozenset(EVENT_FOR_STATE[s] for s in TERMINAL if not ALLOWED[s])
_CHUNK_FIELD = re.compile(rf"{DATA_PREFIX}(\d+)\Z")
_RAW_DEFLATE = -15  # no zlib header or checksum: the dictionary is ours, base85 is checked
_LEVEL = 9
# Never change: stored events were packed with it (a new one goes with a new DATA_PREFIX).
# The job object as json.dumps(..., separators=(",", ":")) writes it after a newline (no
# callback_url of its own), the commonest text last, where deflate reaches it cheapest.
_DICTIONARY = (
    b'{"code":"upstream_error","message":"Pixazo reported FAILED"},"status":"failed",'
    b'"status":"canceled","upstream_status":"FAILED","upstream_status":"CANCELED",'
    b'"input":{"prompt":"","duration":5,"aspect_ratio":"16:9","resolution":"720p","image_url":'
    b'"https://"},"metadata":{},"callback_url":"https://","estimated_cost_usd":null,"attempts":2,'
    b'"warnings":[],"result":null,"output":null,"request_id":null,"upstream_status":null,'
    b'"error":null,pixverse-v6-image-to-video_pixverse-c1-image-to-video_pixverse-c1-text-to-'
    b'video_\n{"id":"job_","job_id":"job_","status":"completed","model":"pixverse-v6-text-to-'
    b'video","input":{"prompt":"'
    b'"},"metadata":{},"callback_url":null,"request_id":"pixverse-v6-text-to-video_",'
    b'"upstream_status":"COMPLETED","output":{"media_url":["https:///media/pixverse-v6-text-to-'
    b'video_/output.mp4"],"media_type":"video/mp4"},"result":{"url":"https://'
    b'/output.mp4","duration":null,"resolution":null},"error":null,"warnings":[],'
    b'"estimated_cost_usd":0.3,"attempts":1,"created":17,"created_at":"2026-01-01T00:00:00.000Z",'
    b'"updated_at":"2026-01-01T00:00:00.000Z","completed_at":"2026-01-01T00:00:00.000Z"}'
)


def settled_snapshot(snapshot: Mapping[str, str]) -> dict[str, str]:
    """The snapshot a settled event keeps: the rendered data and the job's callback_url."""
    if SIGNED_DATA in snapshot or not snapshot:
        return dict(snapshot)
    kept = {SIGNED_DATA: json.dumps(render(snapshot), separators=(",", ":"))}
    if snapshot.get("callback_url"):
        kept["callback_url"] = snapshot["callback_url"]
    return kept


def packing(snapshot: Mapping[str, str], event_type: str) -> list[str] | None:
    """What a settling event stores as its data: the chunks of :func:`pack`; none at all (``[]``,
    any stored packing dropped) for the job's own fields of an event in :data:`FROM_JOB`, whose
    data is rendered from the job hash again; ``None`` (keep what is stored) for no snapshot."""
    if event_type in FROM_JOB and snapshot and SIGNED_DATA not in snapshot:
        return []
    return pack(snapshot) or None


def pack(snapshot: Mapping[str, str]) -> list[str]:
    """The chunks (``d0``, ``d1``... in order) that :func:`event_from_hash` reads back as the
    settled snapshot of ``snapshot``; none for an empty one."""
    kept = settled_snapshot(snapshot)
    if not kept:
        return []
    text = f"{kept.get('callback_url', '')}\n{kept[SIGNED_DATA]}"  # a URL has no newline
    packer = zlib.compressobj(_LEVEL, zlib.DEFLATED, _RAW_DEFLATE, zdict=_DICTIONARY)
    packed = base64.b85encode(packer.compress(text.encode()) + packer.flush()).decode("ascii")
    return [packed[i : i + CHUNK] for i in range(0, len(packed), CHUNK)]


def unpack(raw: Mapping[str, str]) -> dict[str, str] | None:
    """The settled snapshot packed in ``raw``'s chunks, or None when it has none."""
    if f"{DATA_PREFIX}0" not in raw:
        return None
    chunks = (raw.get(f"{DATA_PREFIX}{i}") or "" for i in itertools.count())
    packed = "".join(itertools.takewhile(bool, chunks))
    unpacker = zlib.decompressobj(_RAW_DEFLATE, zdict=_DICTIONARY)
    text = (unpacker.decompress(base64.b85decode(packed)) + unpacker.flush()).decode()
    callback_url, data = text.split("\n", 1)
    kept = {SIGNED_DATA: data}
    if callback_url:
        kept["callback_url"] = callback_url
    return kept


def event_from_hash(raw: Mapping[str, str]) -> Event:
    """:meth:`Event.from_hash`, reading a settled event's packed data as its snapshot."""
    evt = Event.from_hash(raw)
    kept = unpack(raw)
    return evt if kept is None else dataclasses.replace(evt, snapshot=kept)


def is_chunk(name: str) -> bool:
    return _CHUNK_FIELD.match(name) is not None
