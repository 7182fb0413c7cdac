"""Compact text for what a finished job keeps for its whole retention (issue 12: Redis bytes
per job). zlib, then base85 so the value stays a ``str`` for clients that decode responses;
base85 adds a quarter, zlib takes off well over half of JSON with repeated keys.

``clip`` caps a raw body (Pixazo's answers, callback bodies, consumer responses) kept on a
timeline, and says so in the text, so that a reader never mistakes a cut body for a whole one.
"""

from __future__ import annotations

import base64
import zlib

RAW_BODY_CAP = 512  # characters of one raw body kept on a timeline or an attempt record
_TRUNCATED = "… [truncated: {} characters in all]"
_LEVEL = 6


def clip(text: str | None, cap: int = RAW_BODY_CAP) -> str | None:
    """``text`` whole when it fits in ``cap``, else its first ``cap`` characters and a note."""
    if text is None or len(text) <= cap:
        return text
    return text[:cap] + _TRUNCATED.format(len(text))


def pack(text: str) -> str:
    return base64.b85encode(zlib.compress(text.encode("utf-8"), _LEVEL)).decode("ascii")


def unpack(packed: str) -> str:
    return zlib.decompress(base64.b85decode(packed)).decode("utf-8")
