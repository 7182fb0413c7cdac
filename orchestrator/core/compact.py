"""Compact text for what a finished job keeps for its whole retention (issue 12: Redis bytes
per job). zlib, then base85 so the value stays a ``str`` for clients that decode responses;
base85 adds a quarter, zlib takes off well over half of JSON with repeated keys.

A timeline is a couple of kilobytes: too short for zlib to find much to repeat in itself. Its
keys, states and Pixazo's answer shapes are the same in every job, so :func:`pack_timeline`
starts raw deflate from :data:`TIMELINE_DICTIONARY` (a preset dictionary), which a third of the
packed text no longer spells out. The dictionary is part of the stored format: text packed
with it unpacks only with the same bytes, so it is never edited; a better one would be a new
constant under a new name (and a new prefix in :mod:`orchestrator.jobs.timeline`).

``clip`` caps a raw body (Pixazo's answers, callback bodies, consumer responses) kept on a
timeline, and says so in the text, so that a reader never mistakes a cut body for a whole one.
"""

from __future__ import annotations

import base64
import zlib

RAW_BODY_CAP = 512  # characters of one raw body kept on a timeline or an attempt record
_TRUNCATED = "… [truncated: {} characters in all]"
_LEVEL = 6
_RAW_DEFLATE = -15  # wbits: no zlib header and checksum (six bytes a timeline need not keep)
_MEM_LEVEL = 9

# Version 1 of the timeline dictionary: a made-up timeline in the shape json.dumps(...,
# separators=(",", ":")) writes, the commonest text last (deflate reaches it cheapest). Never
# edit it (see the module docstring).
TIMELINE_DICTIONARY_V1 = (
    b'{"type":"operator","action":"repoll","actor":"cli"},{"type":"replay","event_id":"evt_'
    b'"},{"type":"late_answer","request_id":"","outcome":"claimed the job"},{"type":"ignored",'
    b'"source":"poll","upstream_status":"FAILED","reason":"stale"},{"type":"endpoint_disabled",'
    b'"type":"poll","reason":"due","poll":1,"http_status":200,"answer":"","retry_in_seconds":'
    b'"budget":"released","budget":"committed","actor":"operator",'
    b'{"at":"2026-01-01T00:00:00.000Z","type":"transition","to":"submit_unknown","from":'
    b'"submitting","reason":"outcome unknown (timeout); waiting for a callback"},'
    b'"reason":"no callback within the grace period: resubmitting","to":"failed","to":"canceled"'
    b',"outcome":"rejected","http_status":422,"error":{"code":"upstream_rejected","message":"'
    b"pixverse-v6-image-to-video_pixverse-c1-image-to-video_pixverse-c1-text-to-video_"
    b'{"at":"2026-01-01T00:00:00.000Z","type":"callback","claimed":false,"duplicate":false,'
    b'"upstream_status":"COMPLETED","inbox_id":"cb_","raw":"{\\"request_id\\": \\"'
    b'pixverse-v6-text-to-video_\\", \\"status\\": \\"COMPLETED\\", \\"model_id\\": \\"'
    b'pixverse-v6-text-to-video\\", \\"error\\": null, \\"output\\": {\\"media_url\\": [\\"https://'
    b'/output.mp4\\"], \\"media_type\\": \\"video/mp4\\"}, \\"created_at\\": \\"2026-01-01T00:00:00'
    b'.000Z\\", \\"updated_at\\": \\"2026-01-01 00:00:00\\", \\"completed_at\\": \\"2026-01-01 00:'
    b'00:00\\"}","request_id":"pixverse-v6-text-to-video_"},{"at":"2026-01-01T00:00:00.000Z",'
    b'"type":"transition","source":"callback","from":"submitted","upstream_status":"COMPLETED",'
    b'"to":"completed","request_id":"pixverse-v6-text-to-video_"},{"at":"2026-01-01T00:00:00.'
    b'000Z","type":"delivery_attempt","event_id":"evt_","event_type":"job.completed","attempt":'
    b'1,"url":"https://","status_code":200,"latency_ms":2,"response":"{\\"ok\\":true}\\n",'
    b'"error":"","retry_after":null}]'
    b'[{"at":"2026-01-01T00:00:00.000Z","type":"intake","model":"pixverse-v6-text-to-video",'
    b'"to":"queued"},{"at":"2026-01-01T00:00:00.000Z","type":"transition","to":"submitting",'
    b'"from":"queued","reason":"submit"},{"at":"2026-01-01T00:00:00.000Z","type":'
    b'"submit_attempt","attempt":1,"outcome":"accepted","http_status":202,"latency_ms":10,'
    b'"request_id":"pixverse-v6-text-to-video_","answer":"{\\"request_id\\":\\"pixverse-v6-text-'
    b'to-video_\\",\\"status\\":\\"QUEUED\\",\\"polling_url\\":\\"https:///v2/requests/status/'
    b'pixverse-v6-text-to-video_\\"}\\n"},{"at":"2026-01-01T00:00:00.000Z","type":"transition",'
    b'"to":"submitted","from":"submitting","request_id":"pixverse-v6-text-to-video_","reason":'
    b'"accepted"},{"at":"2026-01-01T00:00:00.000Z","type":"'
)


def clip(text: str | None, cap: int = RAW_BODY_CAP) -> str | None:
    """``text`` whole when it fits in ``cap``, else its first ``cap`` characters and a note."""
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + _TRUNCATED.format(len(text))


def pack(text: str) -> str:
    return base64.b85encode(zlib.compress(text.encode("utf-8"), _LEVEL)).decode("ascii")


def unpack(packed: str) -> str:
    return zlib.decompress(base64.b85decode(packed)).decode("utf-8")


def pack_timeline(text: str) -> str:
    """Like :func:`pack`, for a timeline's JSON: raw deflate from the preset dictionary."""
    packer = zlib.compressobj(
        _LEVEL,
        zlib.DEFLATED,
        _RAW_DEFLATE,
        _MEM_LEVEL,
        zlib.Z_DEFAULT_STRATEGY,
        TIMELINE_DICTIONARY_V1,
    )
    return base64.b85encode(packer.compress(text.encode("utf-8")) + packer.flush()).decode("ascii")


def unpack_timeline(packed: str) -> str:
    unpacker = zlib.decompressobj(_RAW_DEFLATE, TIMELINE_DICTIONARY_V1)
    data = unpacker.decompress(base64.b85decode(packed)) + unpacker.flush()
    if not unpacker.eof:  # a cut value: raise as zlib.decompress would, never return part
        raise zlib.error("incomplete packed timeline")
    return data.decode("utf-8")
