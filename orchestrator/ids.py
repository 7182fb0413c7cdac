"""Identifiers that sort by creation time, so indexes and cursors can rely on id order."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_TIME_CHARS = 10  # 50 bits: milliseconds until the year 37000
_RANDOM_CHARS = 16  # 80 bits


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str, now: float | None = None) -> str:
    """``prefix_`` + 26 characters: creation milliseconds, then randomness (ULID layout)."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{prefix}_{_encode(millis, _TIME_CHARS)}{_encode(secrets.randbits(80), _RANDOM_CHARS)}"


def is_id(value: str, prefix: str) -> bool:
    body = value[len(prefix) + 1 :]
    return (
        value.startswith(prefix + "_")
        and len(body) == _TIME_CHARS + _RANDOM_CHARS
        and all(c in _ALPHABET for c in body)
    )
