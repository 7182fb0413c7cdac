"""Identifiers that sort by creation time, so indexes and cursors can rely on id order."""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_TIME_CHARS = 10  # 50 bits: milliseconds until the year 37000
_RANDOM_CHARS = 16  # 80 bits
_BODY = re.compile(f"[{_ALPHABET}]{{{_TIME_CHARS + _RANDOM_CHARS}}}")
_BITS = 5  # one character
# Every two characters (ten bits) at once: ids are made several times a request (its Request-Id,
# a callback's inbox entry, a job, an event), and a divmod per character was most of their cost.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_PAIR_MASK = len(_PAIRS) - 1


def _encode(value: int, length: int) -> str:
    """The low ``length`` characters of ``value`` in base 32, most significant first."""
    head = _ALPHABET[(value >> ((length - 1) * _BITS)) & 31] if length % 2 else ""
    shifts = range((length // 2 - 1) * 2 * _BITS, -1, -2 * _BITS)
    return head + "".join([_PAIRS[(value >> shift) & _PAIR_MASK] for shift in shifts])


def new_id(prefix: str, now: float | None = None) -> str:
    """``prefix_`` + 26 characters: creation milliseconds, then randomness (ULID layout)."""
    millis = int((time.time() if now is None else now) * 1000)
    return f"{prefix}_{_encode(millis, _TIME_CHARS)}{_encode(secrets.randbits(80), _RANDOM_CHARS)}"


def created_at(value: str) -> float:
    """Unix seconds when :func:`new_id` made ``value`` (its leading characters): a job's intake,
    a callback's receipt, without a Redis read."""
    body = value.partition("_")[2]
    millis = 0
    for char in body[:_TIME_CHARS]:
        millis = millis * 32 + _ALPHABET.index(char)
    return millis / 1000


def is_id(value: object, prefix: str) -> bool:
    """True only for the exact shape :func:`new_id` makes with ``prefix``.

    Every id a user hands us (a URL, a form, a CLI argument) passes this before it reaches a
    Redis key: ``job_...:timeline`` would otherwise name another key of another type.
    """
    if not isinstance(value, str) or not value.startswith(prefix + "_"):
        return False
    return _BODY.fullmatch(value, len(prefix) + 1) is not None
